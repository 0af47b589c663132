"""Journeys on a running stack: start one from an event, wait for its end, read the ledger and what went out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from relance.channels.base import OutgoingMessage
from relance.channels.memory import CaptureChannel
from relance.models.journey import JourneyState
from relance.models.tables.delivery import Delivery
from relance.models.tables.journey import JourneyRun
from relance.simulation.run import time_skipping
from relance.workflows.journey import JourneyWorkflow
from tests.conftest import Stack


async def start(stack: Stack, body: dict[str, Any]) -> str:
    """Post the event; the workflow id of the one journey it starts."""
    accepted = await stack.relance.send_event(body)
    [journey] = accepted.journeys
    return journey.workflow_id


async def finish(stack: Stack, workflow_id: str) -> JourneyState:
    """The journey's end, with the test server skipping time until then."""
    async with time_skipping(stack.client):
        return await stack.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id).result()


async def ledger(stack: Stack) -> list[tuple[str, str, datetime, str | None]]:
    """(message, status, time, reason) of every delivery row, in time order."""
    async with stack.sessions() as session:
        rows = await session.scalars(select(Delivery).order_by(Delivery.at, Delivery.id))
        return [(r.message, r.status, r.at, r.reason) for r in rows]


async def journey_run(stack: Stack, workflow_id: str) -> JourneyRun:
    """The journey's row in relance's database."""
    async with stack.sessions() as session:
        run = await session.get(JourneyRun, workflow_id)
    assert run is not None, f"no journey_runs row for {workflow_id}"
    return run


def captured(stack: Stack) -> list[OutgoingMessage]:
    """What went out through the stack's capture channel (the default of ``running_stack``)."""
    assert isinstance(stack.channel, CaptureChannel)
    return stack.channel.messages
