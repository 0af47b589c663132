"""The activities of a bulk send: audience snapshot, paced batches, report.

Each recipient goes through the same delivery path as journeys (eligibility,
commercial pressure, rendering, the ledger's exactly-once claim), so a batch
re-run after a crash finds what was sent and never sends it again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Select, String, and_, case, cast, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from relance.activities.delivery import DeliveryActivities
from relance.models.broadcast_io import BatchRequest, BatchResult, BroadcastReport, ChannelMode
from relance.models.broadcast_tables import Broadcast, BroadcastRecipient
from relance.models.journey_io import (
    Anchor,
    Channel,
    DeliveryRequest,
    DeliveryStatus,
    OnPressure,
    Priority,
    Purpose,
    StepOutcome,
    StepSpec,
    TriggerEvent,
)
from relance.models.tables import Contact, ContactList, ListMember

log = structlog.get_logger("relance.broadcast")
CONCURRENCY = 20  # sends in flight within a batch, under the pace


def audience_ids(audience: dict[str, Any], now: datetime) -> Select[Any]:
    """``SELECT contacts.id`` of the audience: a list's members, or a segment's contacts."""
    if audience.get("list") is not None:
        return (
            select(ListMember.contact_id.label("id"))
            .join(ContactList, ContactList.id == ListMember.list_id)
            .where(ContactList.name == audience["list"], ContactList.archived_at.is_(None))
        )
    from relance import segments  # segments compile criteria to SQL

    spec = audience.get("segment") if audience.get("segment") is not None else audience["builtin"]
    return segments.audience(spec, now)  # type: ignore[attr-defined,no-any-return]


def snapshot_statement(broadcast: Broadcast, now: datetime) -> Any:
    """One INSERT … SELECT: one row per person and channel, numbered for the batches.

    One message per person: contacts sharing an email address count once on email.
    """
    members = audience_ids(broadcast.audience, now).subquery()
    person = select(Contact).where(Contact.id.in_(select(members.c.id))).subquery()
    mode = ChannelMode(broadcast.channels)
    preferred = case(
        (
            and_(person.c.attributes["preferred_channel"].as_string() == "sms", person.c.phone.is_not(None)),
            literal("sms"),
        ),
        (person.c.email.is_not(None), literal("email")),
        (person.c.phone.is_not(None), literal("sms")),
        else_=literal("email"),
    )
    channels = {
        ChannelMode.EMAIL: [literal("email")],
        ChannelMode.SMS: [literal("sms")],
        ChannelMode.BOTH: [literal("email"), literal("sms")],
        ChannelMode.PREFERRED: [preferred],
    }[mode]
    parts = [select(person.c.id.label("contact_id"), chan.label("channel"), person.c.email, person.c.phone)
             for chan in channels]  # fmt: skip
    rows = parts[0].union_all(*parts[1:]).subquery() if len(parts) > 1 else parts[0].subquery()
    # The same address twice (possible duplicates) gets one message: the oldest contact keeps it.
    address = case(
        (rows.c.channel == "email", func.lower(rows.c.email)),
        else_=rows.c.phone,
    )
    person_key = func.coalesce(address, cast(rows.c.contact_id, String))
    first = (
        select(func.min(rows.c.contact_id).label("contact_id"), rows.c.channel)
        .group_by(rows.c.channel, person_key)
        .subquery()
    )
    numbered = select(
        literal(broadcast.id).label("broadcast_id"),
        func.row_number().over(order_by=(first.c.contact_id, first.c.channel)).label("seq"),
        first.c.contact_id,
        first.c.channel,
        literal("pending").label("status"),
    )
    return insert(BroadcastRecipient).from_select(
        ["broadcast_id", "seq", "contact_id", "channel", "status"], numbered
    )


@dataclass
class BroadcastActivities:
    sessions: async_sessionmaker[AsyncSession]
    delivery: DeliveryActivities

    @activity.defn(name="snapshot_audience")
    async def snapshot(self, broadcast_id: str) -> int:
        """Freeze the audience once; a retry finds the snapshot taken."""
        async with self.sessions() as session, session.begin():
            broadcast = await session.get(Broadcast, broadcast_id)
            assert broadcast is not None, f"broadcast {broadcast_id} is not stored"
            count = await self._recipients(session, broadcast_id)
            if count == 0:
                await session.execute(snapshot_statement(broadcast, datetime.now(UTC)))
                count = await self._recipients(session, broadcast_id)
            broadcast.status, broadcast.updated_at = "sending", datetime.now(UTC)
        log.info("broadcast.snapshot", broadcast=broadcast_id, recipients=count)
        return count

    @staticmethod
    async def _recipients(session: AsyncSession, broadcast_id: str) -> int:
        return (
            await session.scalar(select(func.count()).where(BroadcastRecipient.broadcast_id == broadcast_id))
        ) or 0

    @activity.defn(name="send_batch")
    async def send_batch(self, request: BatchRequest) -> BatchResult:
        """The next recipients in order; or, in the deferred pass, those whose time has come."""
        async with self.sessions() as session:
            broadcast = await session.get(Broadcast, request.broadcast_id)
            assert broadcast is not None
            query = (
                select(BroadcastRecipient, Contact.external_id)
                .join(Contact, Contact.id == BroadcastRecipient.contact_id)
                .where(
                    BroadcastRecipient.broadcast_id == request.broadcast_id,
                    BroadcastRecipient.seq > request.after_seq,
                )
                .order_by(BroadcastRecipient.seq)
                .limit(request.batch_size)
            )
            if request.deferred:
                query = query.where(
                    BroadcastRecipient.status == "pending", BroadcastRecipient.retry_at <= request.at
                )
            rows = [(r, external_id) for r, external_id in (await session.execute(query)).all()]
        if not rows:
            return BatchResult(last_seq=request.after_seq, processed=0, done=True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        gate = asyncio.Semaphore(CONCURRENCY)
        outcomes: dict[int, StepOutcome] = {}

        async def one(index: int, recipient: BroadcastRecipient, external_id: str) -> None:
            # Paced: the n-th send of the batch starts no earlier than n / rate seconds in.
            await asyncio.sleep(max(0.0, started + index / request.rate_per_second - loop.time()))
            async with gate:
                outcomes[recipient.seq] = await self.delivery.deliver(
                    self._request(broadcast, request, external_id, recipient)
                )
            activity.heartbeat(recipient.seq)

        todo = [(r, e) for r, e in rows if r.status == "pending"]  # the rest went before a crash
        # Every send in flight finishes before the batch reports a failure: a retry must never
        # meet a claim whose send is still running (it would be recorded as unconfirmed).
        results = await asyncio.gather(
            *(one(i, r, e) for i, (r, e) in enumerate(todo)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        async with self.sessions() as session, session.begin():
            for seq, outcome in outcomes.items():
                deferred = outcome.status is DeliveryStatus.DEFERRED and outcome.until is not None
                await session.execute(
                    update(BroadcastRecipient)
                    .where(
                        BroadcastRecipient.broadcast_id == request.broadcast_id, BroadcastRecipient.seq == seq
                    )
                    .values(
                        # Deferred (an SMS at night) stays pending until its opening hour.
                        status="pending" if deferred else outcome.status.value,
                        reason=outcome.reason,
                        retry_at=outcome.until if deferred else None,
                        deferrals=BroadcastRecipient.deferrals + (1 if deferred else 0),
                    )
                )
            next_retry = await session.scalar(
                select(func.min(BroadcastRecipient.retry_at)).where(
                    BroadcastRecipient.broadcast_id == request.broadcast_id,
                    BroadcastRecipient.status == "pending",
                    BroadcastRecipient.retry_at.is_not(None),
                )
            )
        if failures:
            raise failures[0]  # Temporal retries the batch; what went out is in the ledger
        return BatchResult(
            last_seq=rows[-1][0].seq,
            # Decided for good: sent or suppressed (before a crash, or now); not the deferred.
            processed=len(rows)
            - len(todo)
            + sum(o.status is not DeliveryStatus.DEFERRED for o in outcomes.values()),
            done=len(rows) < request.batch_size,
            next_retry=next_retry,
        )

    @staticmethod
    def _request(
        broadcast: Broadcast, request: BatchRequest, external_id: str, recipient: BroadcastRecipient
    ) -> DeliveryRequest:
        channel = recipient.channel
        return DeliveryRequest(
            idempotency_key=f"broadcast:{broadcast.id}:{external_id}:{channel}",
            workflow_id=f"broadcast:{broadcast.id}",
            scenario="broadcast",
            journey=broadcast.id,
            version="",
            contact=external_id,
            step=StepSpec(
                id="message",
                channel=Channel(channel),
                template=broadcast.template,
                delay_seconds=0,
                after=Anchor.TRIGGER,
                purpose=Purpose.MARKETING,
                priority=Priority(broadcast.priority),
                on_pressure=OnPressure.DROP,  # a bulk send is not worth sending a day late
                sms_window=("09:00", "22:00") if channel == "sms" else None,
            ),
            trigger=TriggerEvent(
                event_id=0,
                type="broadcast",
                ref=broadcast.id,
                occurred_at=broadcast.send_at,
                properties={"broadcast": broadcast.name},
            ),
            at=request.at,
            deferrals=recipient.deferrals,
            arbitrate=False,  # decided at once: waiting for rivals would stall the batch
        )

    @activity.defn(name="finish_broadcast")
    async def finish(self, broadcast_id: str) -> BroadcastReport:
        async with self.sessions() as session, session.begin():
            counts = (
                await session.execute(
                    select(BroadcastRecipient.status, BroadcastRecipient.reason, func.count())
                    .where(BroadcastRecipient.broadcast_id == broadcast_id)
                    .group_by(BroadcastRecipient.status, BroadcastRecipient.reason)
                )
            ).all()
            report = BroadcastReport()
            for status, reason, count in counts:
                if status == "pending":
                    continue
                report.processed += count
                if status == DeliveryStatus.SENT.value:
                    report.sent += count
                elif status in (DeliveryStatus.FAILED.value, DeliveryStatus.UNCONFIRMED.value):
                    report.failed += count
                else:
                    key = reason or status
                    report.suppressed[key] = report.suppressed.get(key, 0) + count
            broadcast = await session.get(Broadcast, broadcast_id)
            assert broadcast is not None
            broadcast.status, broadcast.report = "completed", report.model_dump()
            broadcast.updated_at = datetime.now(UTC)
        log.info("broadcast.done", broadcast=broadcast_id, sent=report.sent, processed=report.processed)
        return report

    @activity.defn(name="set_broadcast_status")
    async def set_status(self, args: list[str]) -> None:
        broadcast_id, status = args
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id)
                .values(status=status, updated_at=datetime.now(UTC))
            )
