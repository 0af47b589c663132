"""The activities of a bulk send: audience snapshot, paced batches, report.

Each recipient goes through the same delivery path as journeys (eligibility,
commercial pressure, rendering, the ledger's exactly-once claim), so a batch
re-run after a crash finds what was sent and never sends it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from relance.activities.bulk_delivery import deliver_batch
from relance.activities.delivery import DeliveryActivities
from relance.channels.base import TransientSendError
from relance.delivery.ledger import BULK_SEND
from relance.delivery.message import Message, Occasion
from relance.models.broadcast import BatchRequest, BatchResult, BroadcastReport, ChannelMode
from relance.models.journey import Channel, DeliveryStatus, OnPressure, Priority, Purpose, StepOutcome
from relance.models.tables.broadcast import Broadcast, BroadcastRecipient
from relance.models.tables.contact import Contact
from relance.models.tables.list import ContactList, ListMember
from relance.workflows import ids

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
    from relance.segments.audience import audience as segment_audience  # compiles criteria to SQL

    spec = audience["segment"] if audience.get("segment") is not None else audience["builtin"]
    return segment_audience(spec, now)


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
    by_mode: dict[ChannelMode, list[ColumnElement[Any]]] = {
        ChannelMode.EMAIL: [literal("email")],
        ChannelMode.SMS: [literal("sms")],
        ChannelMode.BOTH: [literal("email"), literal("sms")],
        ChannelMode.PREFERRED: [preferred],
    }
    channels = by_mode[mode]
    parts = [select(person.c.id.label("contact_id"), chan.label("channel"), person.c.email, person.c.phone)
             for chan in channels]  # fmt: skip
    rows = parts[0].union_all(*parts[1:]).subquery() if len(parts) > 1 else parts[0].subquery()
    # The same address twice (possible duplicates) gets one message: the oldest contact keeps it.
    address = case(
        (rows.c.channel == "email", func.lower(rows.c.email)),
        else_=rows.c.phone,
    )
    person_key = func.coalesce(address, sql_cast(rows.c.contact_id, String))
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
    delivery: DeliveryActivities  # each recipient goes through its policy, renderer and channel

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
        todo = [(r, e) for r, e in rows if r.status == "pending"]  # the rest went before a crash
        messages = [self._message(broadcast, request, e, r) for r, e in todo]
        failure: TransientSendError | None = None
        try:
            decided = await deliver_batch(
                self.delivery,
                self.sessions,
                messages,
                request.rate_per_second,
                CONCURRENCY,
                activity.heartbeat,
            )
        except TransientSendError as error:
            failure = error  # what was decided is in the ledger; the retry picks up the rest
            decided = []
        outcomes: dict[int, StepOutcome] = {r.seq: o for (r, _), o in zip(todo, decided, strict=False)}
        table = cast(
            Table, BroadcastRecipient.__table__
        )  # typed as a FromClause; executemany wants the Table
        changes = [
            {
                "b_seq": seq,
                # Deferred (an SMS at night) stays pending until its opening hour.
                "b_status": "pending" if deferred else outcome.status.value,
                "b_reason": outcome.reason,
                "b_retry": outcome.until if deferred else None,
                "b_more": int(deferred),
            }
            for seq, outcome in outcomes.items()
            for deferred in [outcome.status is DeliveryStatus.DEFERRED and outcome.until is not None]
        ]
        async with self.sessions() as session, session.begin():
            if changes:  # one executemany for the batch
                await (await session.connection()).execute(
                    update(table)
                    .where(table.c.broadcast_id == request.broadcast_id, table.c.seq == bindparam("b_seq"))
                    .values(
                        status=bindparam("b_status"),
                        reason=bindparam("b_reason"),
                        retry_at=bindparam("b_retry"),
                        deferrals=table.c.deferrals + bindparam("b_more"),
                    ),
                    changes,
                )
            next_retry = await session.scalar(
                select(func.min(BroadcastRecipient.retry_at)).where(
                    BroadcastRecipient.broadcast_id == request.broadcast_id,
                    BroadcastRecipient.status == "pending",
                    BroadcastRecipient.retry_at.is_not(None),
                )
            )
        if failure is not None:
            raise failure  # Temporal retries the batch; what went out is in the ledger
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
    def _message(
        broadcast: Broadcast, request: BatchRequest, external_id: str, recipient: BroadcastRecipient
    ) -> Message:
        channel = recipient.channel
        return Message(
            key=f"broadcast:{broadcast.id}:{external_id}:{channel}",
            workflow_id=ids.broadcast(broadcast.id),
            scenario=BULK_SEND,
            journey=broadcast.id,
            id="message",
            contact=external_id,
            channel=Channel(channel),
            template=broadcast.template,
            purpose=Purpose.MARKETING,
            at=request.at,
            occasion=Occasion("broadcast", broadcast.send_at, {"broadcast": broadcast.name}),
            priority=Priority(broadcast.priority),
            on_pressure=OnPressure.DROP,  # a bulk send is not worth sending a day late
            sms_window=("09:00", "22:00") if channel == "sms" else None,
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
