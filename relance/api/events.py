"""``POST /v1/events``: what backend services send; journeys start or hear it (see relance.starter.ingest)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from relance.api.deps import relance
from relance.models.event import EventAccepted, EventIn

router = APIRouter(tags=["events"])


@router.post("/v1/events", status_code=202, response_model=EventAccepted)
async def post_event(event: EventIn, request: Request) -> EventAccepted:
    return await relance(request).send_event(event)
