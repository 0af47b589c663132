"""Bulk sends from the API and the CLI: schedule, list, reschedule, cancel, test (B-01 … B-04).

"Send" stores the send and starts its BroadcastWorkflow, which waits the safety
delay (15 minutes by default) or until the chosen time. Until messages are
generated, the send can be moved or cancelled: both are Temporal updates that
the workflow validates (a time in the past is refused, and so is any change
once sending began).
"""

from __future__ import annotations

import builtins
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from relance.channels.base import OutgoingMessage
from relance.channels.router import build_channel
from relance.core.errors import Refused
from relance.core.settings import Settings
from relance.models.broadcast import BroadcastIn, BroadcastInput, BroadcastState, ChannelMode, Reschedule
from relance.models.journey import Channel, Purpose
from relance.models.tables.broadcast import Broadcast
from relance.models.tables.list import ContactList
from relance.segments.audience import audience as segment_audience
from relance.segments.builtins import BUILTINS, is_builtin
from relance.templates.engine import TemplateError, TemplateStore, sample_context
from relance.workflows import ids
from relance.workflows.broadcast import BroadcastWorkflow


def _channels(mode: ChannelMode) -> list[Channel]:
    if mode is ChannelMode.EMAIL:
        return [Channel.EMAIL]
    if mode is ChannelMode.SMS:
        return [Channel.SMS]
    return [Channel.EMAIL, Channel.SMS]


class Broadcasts:
    def __init__(
        self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self.client, self.sessions, self.settings = client, sessions, settings
        self.templates = TemplateStore(settings.templates_dir)

    async def schedule(self, data: BroadcastIn, now: datetime | None = None) -> BroadcastState:
        now = now or datetime.now(UTC)
        send_at = data.at or now + timedelta(seconds=self.settings.broadcast_safety_delay_seconds)
        if send_at.tzinfo is None:
            raise Refused("at", "give a time zone, e.g. 2026-12-01T09:00:00+01:00")
        if data.at is not None and data.at <= now:
            raise Refused("at", f"{data.at.isoformat()} is in the past: pick a later time")
        self._check_templates(data)
        broadcast_id = f"b{int(now.timestamp())}{secrets.token_hex(3)}"
        async with self.sessions() as session, session.begin():
            await self._check_audience(session, data)
            session.add(
                Broadcast(
                    id=broadcast_id,
                    name=data.name,
                    audience=data.audience.model_dump(exclude_none=True, by_alias=True),
                    channels=data.channels.value,
                    template=data.template,
                    priority=data.priority.value,
                    status="scheduled",
                    send_at=send_at,
                    created_at=now,
                    updated_at=now,
                )
            )
        await self.client.start_workflow(
            BroadcastWorkflow.run,
            BroadcastInput(
                broadcast_id=broadcast_id,
                send_at=send_at,
                batch_size=self.settings.broadcast_batch_size,
                rate_per_second=self.settings.broadcast_rate_per_second,
                batches_per_run=self.settings.broadcast_batches_per_run,
            ),
            id=ids.broadcast(broadcast_id),
            task_queue=self.settings.task_queue,
            memo={"summary": f"bulk send '{data.name}' ({data.channels.value}) at {send_at.isoformat()}"},
        )
        return BroadcastState(broadcast_id=broadcast_id, status="scheduled", send_at=send_at)

    def _check_templates(self, data: BroadcastIn) -> None:
        for channel in _channels(data.channels):
            problems = [
                p for p in self.templates.check(data.template, channel.value) if p.severity == "error"
            ]
            if problems:
                raise Refused("template", f"{channel.value}: {problems[0]}")

    async def _check_audience(self, session: AsyncSession, data: BroadcastIn) -> None:
        audience = data.audience
        name = audience.list_name
        if name is not None:
            row = await session.scalar(select(ContactList).where(ContactList.name == name))
            if row is None:
                raise Refused("audience.list", f"no list named '{name}'")
            if row.archived_at is not None:
                raise Refused("audience.list", f"list '{name}' is archived: reactivate it first")
            return
        if audience.builtin is not None and not is_builtin(audience.builtin):
            # Only the default filters' names: never a path to a file on this server.
            raise Refused(
                "audience.builtin", f"no default filter '{audience.builtin}'; known: {', '.join(BUILTINS)}"
            )
        spec = audience.segment if audience.segment is not None else audience.builtin
        assert spec is not None  # Audience holds exactly one of list, segment and builtin
        try:
            segment_audience(spec, datetime.now(UTC))
        except ValueError as error:
            raise Refused("audience.segment", str(error)) from error

    async def list(self, include_done: bool = False) -> list[BroadcastState]:
        async with self.sessions() as session:
            query = select(Broadcast).order_by(Broadcast.send_at)
            if not include_done:
                query = query.where(Broadcast.status.in_(("scheduled", "sending")))
            rows = list(await session.scalars(query))
        return [
            BroadcastState(broadcast_id=r.id, status=r.status, send_at=r.send_at, report=r.report or None)
            for r in rows
        ]

    async def state(self, broadcast_id: str) -> BroadcastState:
        handle = self.client.get_workflow_handle_for(BroadcastWorkflow.run, ids.broadcast(broadcast_id))
        try:
            return await handle.query(BroadcastWorkflow.state)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            raise Refused("id", f"no send '{broadcast_id}'", 404) from error

    async def reschedule(self, broadcast_id: str, at: datetime) -> BroadcastState:
        state = await self._update(broadcast_id, "reschedule", Reschedule(at=at))
        async with self.sessions() as session, session.begin():
            row = await session.get(Broadcast, broadcast_id)
            if row is not None:
                row.send_at, row.updated_at = at, datetime.now(UTC)
        return state

    async def cancel(self, broadcast_id: str) -> BroadcastState:
        state = await self._update(broadcast_id, "cancel", None)
        async with self.sessions() as session, session.begin():
            row = await session.get(Broadcast, broadcast_id)
            if row is not None:
                row.status, row.updated_at = "cancelled", datetime.now(UTC)
        return state

    async def _update(self, broadcast_id: str, name: str, arg: Any) -> BroadcastState:
        async with self.sessions() as session:
            row = await session.get(Broadcast, broadcast_id)
            if row is None:
                raise Refused("id", f"no send '{broadcast_id}'", 404)
            status = row.status
        handle = self.client.get_workflow_handle(ids.broadcast(broadcast_id))
        field = "at" if name == "reschedule" else "id"
        try:
            args = [] if arg is None else [arg]
            return await handle.execute_update(name, args=args, result_type=BroadcastState)
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise Refused(field, message, 409) from error
        except RPCError as error:
            if error.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
            # The workflow is over: the send happened or was cancelled.
            raise Refused(field, f"the send is {status}: too late to {name} it", 409) from error

    async def test_send(self, template: str, channels: ChannelMode, to: str) -> builtins.list[str]:
        """Render with sample data and send to the marketer only; nothing is recorded."""
        channel_provider = build_channel(self.settings)
        sent: builtins.list[str] = []  # the class's 'list' method shadows the builtin here
        for channel in _channels(channels):
            try:
                context = sample_context("broadcast", "test", "message", channel.value)
                rendered = self.templates.render(template, channel, context, None)
            except TemplateError as error:
                raise Refused("template", str(error)) from error
            message = OutgoingMessage(
                idempotency_key=f"test:{secrets.token_hex(8)}",
                channel=channel,
                purpose=Purpose.MARKETING,
                to=to,
                sender=self.settings.email_from,
                subject=f"[TEST] {rendered.subject}" if rendered.subject else None,
                text=rendered.text,
                html=rendered.html,
                headers={},
            )
            result = await channel_provider.send(message)
            sent.append(f"{channel.value}: {result.provider}")
        return sent
