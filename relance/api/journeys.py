"""``/v1/journeys/{id}``: a journey's state (current step, next send, steps done) and its cancellation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from relance.api.deps import relance
from relance.api.errors import NotFound
from relance.models.event import CancelIn
from relance.models.journey import JourneyState

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])


class CancelAccepted(BaseModel):
    workflow_id: str
    status: str = "cancelling"


@router.get("/{workflow_id}", response_model=JourneyState)
async def journey_state(workflow_id: str, request: Request) -> JourneyState:
    try:
        return await relance(request).journey_state(workflow_id)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no journey with id '{workflow_id}'") from error
        raise


@router.post("/{workflow_id}/cancel", status_code=202)
async def cancel(workflow_id: str, body: CancelIn, request: Request) -> CancelAccepted:
    try:
        await relance(request).cancel_journey(workflow_id, body.reason)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no running journey with id '{workflow_id}'") from error
        raise
    return CancelAccepted(workflow_id=workflow_id)
