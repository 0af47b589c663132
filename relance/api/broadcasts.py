"""``/v1/sends``: bulk sends (B-01 … B-05): schedule, list, reschedule, cancel, test send."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from relance.broadcasts.service import Broadcasts
from relance.models.broadcast import BroadcastIn, BroadcastState, ChannelMode

router = APIRouter(prefix="/v1/sends", tags=["bulk sends"])


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: datetime


class TestSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str = Field(pattern=r"^[A-Za-z0-9_\-/]+$")
    channels: ChannelMode = ChannelMode.EMAIL
    to: str = Field(min_length=3, max_length=320, description="the marketer's own address or phone")


def _broadcasts(request: Request) -> Broadcasts:
    relance = request.app.state.relance
    return Broadcasts(relance.client, relance.ingestor.sessions, relance.settings)


@router.post("", status_code=202, summary="Send to a list or segment (after the safety delay, or at 'at')")
async def schedule(body: BroadcastIn, request: Request) -> BroadcastState:
    return await _broadcasts(request).schedule(body)


@router.get("", summary="Scheduled and running sends (add ?all=true for finished ones)")
async def list_sends(request: Request, all: bool = False) -> list[BroadcastState]:
    return await _broadcasts(request).list(include_done=all)


@router.get("/{broadcast_id}", summary="A send's state, progress and final report")
async def show(broadcast_id: str, request: Request) -> BroadcastState:
    return await _broadcasts(request).state(broadcast_id)


@router.post("/{broadcast_id}/reschedule", summary="Move a send that has not started")
async def reschedule(broadcast_id: str, body: RescheduleIn, request: Request) -> BroadcastState:
    return await _broadcasts(request).reschedule(broadcast_id, body.at)


@router.post("/{broadcast_id}/cancel", summary="Cancel a send that has not started")
async def cancel(broadcast_id: str, request: Request) -> BroadcastState:
    return await _broadcasts(request).cancel(broadcast_id)


@router.post("/test", summary="Send the message to yourself first, with sample data")
async def test_send(body: TestSendIn, request: Request) -> dict[str, list[str]]:
    return {"sent": await _broadcasts(request).test_send(body.template, body.channels, body.to)}
