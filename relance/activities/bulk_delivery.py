"""The delivery path for a batch of a bulk send, set-based.

The rules are the journeys' (``relance/delivery/``: the same policy, rendering,
ledger keys, commercial pressure and exactly-once claim), but a batch reads what
it needs in a few statements, claims all its ledger rows in one INSERT … ON
CONFLICT DO NOTHING, sends, and records the outcomes in one executemany: a
per-message round of transactions would cost more than the sending itself.
Commercial pressure decides at once, in order, without waiting for rivals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from relance.activities.delivery import DeliveryActivities
from relance.channels.base import ChannelProvider, OutgoingMessage, TransientSendError
from relance.contacts.consent import granted_consents_of
from relance.delivery import ledger, pressure
from relance.delivery.ledger import QUEUED, RETRYING, Attempt, Ready
from relance.delivery.message import Message
from relance.delivery.send import send
from relance.models.journey import DeliveryStatus, StepOutcome
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery


@dataclass
class Planned:
    message: Message
    contact: Contact | None
    outcome: StepOutcome | None = None  # decided without sending, or once sent
    outgoing: OutgoingMessage | None = None  # to send


async def deliver_batch(
    delivery: DeliveryActivities,
    session_factory: Callable[[], AsyncSession],
    messages: Sequence[Message],
    rate_per_second: float,
    concurrency: int,
    heartbeat: Callable[[int], None],
) -> list[StepOutcome]:
    """Outcomes in the order of ``messages``; raises a TransientSendError after recording the rest."""
    plans = await _decide(delivery, session_factory, messages)
    to_send = [p for p in plans if p.outgoing is not None]
    attempts: dict[str, Attempt] = {}
    # Claimed a few at a time, right before they go: a worker dying mid-batch leaves at most
    # one chunk "sending" (then recorded unconfirmed, never resent); the rest stay queued.
    started = asyncio.get_running_loop().time()
    for first in range(0, len(to_send), concurrency):
        chunk = await _claim(session_factory, to_send[first : first + concurrency])
        done = await _send_all(delivery.channel, chunk, rate_per_second, first, started)
        if done:
            async with session_factory() as session, session.begin():
                await ledger.finish_many(session, done)
        attempts |= done
        heartbeat(first)
    refused = [a for a in attempts.values() if a.status == RETRYING]
    if refused:
        raise TransientSendError(f"{len(refused)} message(s) refused for now: {refused[0].reason}")
    return [_decided(p) for p in plans]


async def _decide(
    delivery: DeliveryActivities, session_factory: Callable[[], AsyncSession], messages: Sequence[Message]
) -> list[Planned]:
    policy = delivery.policy
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        # The contacts are locked like a journey's send locks its contact (commercial pressure).
        contacts = await pressure.lock_contacts(session, (m.contact for m in messages))
        granted = await granted_consents_of(session, [c.id for c in contacts.values()])
        existing = await ledger.rows(session, (m.key for m in messages))
        plans: list[Planned] = []
        prepared: dict[str, Ready] = {}
        asks: dict[str, pressure.Ask] = {}
        for message in messages:
            contact = contacts.get(message.contact)
            plan = Planned(message, contact)
            plans.append(plan)
            row = existing.get(message.key)
            plan.outcome = ledger.settled(row) if row is not None else None  # decided before a crash
            if plan.outcome is not None:
                continue
            ready = delivery.prepare(message, contact, granted[contact.id] if contact else set())
            prepared[message.key] = ready
            if isinstance(ready, OutgoingMessage) and contact and policy.capped(message):
                day = pressure.local_day(message.at, policy.zone(contact))
                asks[message.key] = pressure.Ask(
                    message.claim_key, contact.id, day, message.priority, message.at
                )
        verdicts = (
            await pressure.decide_at_once(session, policy.pressure, list(asks.values())) if asks else {}
        )
        claims: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for plan in plans:
            message, contact = plan.message, plan.contact
            if plan.outcome is not None:
                continue
            ready = prepared[message.key]
            ask = asks.get(message.key)
            if ask is not None:
                verdict = verdicts[ask.key]
                lost = policy.after_pressure(message, verdict, contact)
                # The claim records what became of the message: decided here, not arbitrated.
                state = pressure.TAKEN if verdict.go else pressure.YIELDED
                claims.append(ask.row(state, lost.reason if lost else None))
                ready = lost or ready
            if not isinstance(ready, OutgoingMessage):
                values, plan.outcome = ledger.not_sent(message, contact, ready)
                rows.append(values)
                continue
            row = existing.get(message.key)
            if row is not None:  # queued, or refused for now by the provider: queue it again
                row.attempts += int(row.status == RETRYING)
                row.status, row.reason, row.updated_at = QUEUED, None, now
            else:
                rows.append(ledger.values(message, contact, QUEUED, None, ready))
            plan.outgoing = ready
        if claims:
            await session.execute(pressure.insert_claims(session), claims)
        if rows:
            inserted = set(
                await session.scalars(
                    ledger.insert_ignoring_conflicts(session).returning(Delivery.idempotency_key), rows
                )
            )
            for plan in plans:
                # Another worker claimed it between our read and our insert: leave it to them.
                key = plan.message.key
                if plan.outgoing is not None and key not in inserted and key not in existing:
                    _taken_elsewhere(plan)
    return plans


def _decided(plan: Planned) -> StepOutcome:
    assert plan.outcome is not None, "every message of the batch is decided, sent or left to another worker"
    return plan.outcome


def _taken_elsewhere(plan: Planned) -> None:
    plan.outgoing = None
    plan.outcome = ledger.outcome(plan.message, DeliveryStatus.UNCONFIRMED, ledger.TAKEN_ELSEWHERE)


async def _claim(session_factory: Callable[[], AsyncSession], plans: list[Planned]) -> list[Planned]:
    """queued → sending; what another worker took meanwhile is left out."""
    async with session_factory() as session, session.begin():
        claimed = await ledger.hand_over(session, [p.message.key for p in plans])
    for plan in plans:
        if plan.message.key not in claimed:
            _taken_elsewhere(plan)
    return [p for p in plans if p.outgoing is not None]


async def _send_all(
    channel: ChannelProvider, plans: list[Planned], rate_per_second: float, offset: int, started: float
) -> dict[str, Attempt]:
    loop = asyncio.get_running_loop()
    attempts: dict[str, Attempt] = {}

    async def one(index: int, plan: Planned) -> None:
        # Paced: the n-th message starts no earlier than n / rate seconds into the batch.
        await asyncio.sleep(max(0.0, started + (offset + index) / rate_per_second - loop.time()))
        assert plan.outgoing is not None
        attempt = await send(channel, plan.outgoing)
        attempts[plan.message.key] = attempt
        plan.outcome = ledger.outcome(plan.message, attempt.outcome_status, attempt.reason)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(plans)))
    return attempts
