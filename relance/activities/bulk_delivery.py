"""The delivery path for a batch of a bulk send, set-based.

The rules are the journeys' (same eligibility, SMS hours, rendering, ledger
keys, commercial pressure, exactly-once claim), but a batch reads what it needs
in a few statements, claims all its ledger rows in one INSERT … ON CONFLICT DO
NOTHING, sends, and records the outcomes in one executemany: a per-message
round of transactions would cost more than the sending itself.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from relance.activities.delivery import (
    CLAIMED,
    RETRYING,
    Deferral,
    DeliveryActivities,
    _ledger_values,
    insert_ignoring_conflicts,
)
from relance.channels.base import OutgoingMessage, PermanentSendError, TransientSendError, UncertainSendError
from relance.contacts.consent import THREE_YEARS  # noqa: F401 (documents that the same rules apply)
from relance.delivery import pressure
from relance.models.journey import DeliveryRequest, DeliveryStatus, Purpose, StepOutcome
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.delivery import Delivery, PressureClaim

log = structlog.get_logger("relance.bulk")
FINAL = {s.value for s in DeliveryStatus}
QUEUED = "queued"  # decided to go, not yet handed to the provider: safe to send after a crash


@dataclass
class Planned:
    request: DeliveryRequest
    contact: Contact | None
    outcome: StepOutcome | None = None  # decided without sending
    message: OutgoingMessage | None = None  # to send


async def deliver_batch(
    delivery: DeliveryActivities,
    session_factory: Callable[[], AsyncSession],
    requests: Sequence[DeliveryRequest],
    rate_per_second: float,
    concurrency: int,
    heartbeat: Callable[[int], None],
) -> list[StepOutcome]:
    """Outcomes in the order of ``requests``; raises a TransientSendError after recording the rest."""
    plans = await _decide(delivery, session_factory, requests)
    to_send = [p for p in plans if p.message is not None]
    results: dict[str, tuple[str, str | None, str | None, str | None, Planned]] = {}
    # Claimed a few at a time, right before they go: a worker dying mid-batch leaves at most
    # one chunk "sending" (then recorded unconfirmed, never resent); the rest stay queued.
    loop = asyncio.get_running_loop()
    started = loop.time()
    for first in range(0, len(to_send), concurrency):
        chunk = await _claim(session_factory, to_send[first : first + concurrency])
        done = await _send_all(delivery, chunk, rate_per_second, first, started)
        await _record(session_factory, done)
        results |= done
        heartbeat(first)
    transient = [r for r in results.values() if r[0] == RETRYING]
    if transient:
        raise TransientSendError(f"{len(transient)} message(s) refused for now: {transient[0][1]}")
    return [p.outcome for p in plans]  # type: ignore[misc]


async def _decide(
    delivery: DeliveryActivities,
    session_factory: Callable[[], AsyncSession],
    requests: Sequence[DeliveryRequest],
) -> list[Planned]:
    external_ids = list({r.contact for r in requests})
    keys = [r.idempotency_key for r in requests]
    now = datetime.now(UTC)
    async with session_factory() as session, session.begin():
        # The contacts are locked like a journey's send locks its contact (commercial pressure).
        contacts = {
            c.external_id: c
            for c in await session.scalars(
                select(Contact)
                .where(Contact.external_id.in_(external_ids))
                .order_by(Contact.id)
                .with_for_update()
            )
        }
        ids = [c.id for c in contacts.values()]
        granted: dict[int, set[tuple[str, str]]] = defaultdict(set)
        for contact_id, channel, purpose in await session.execute(
            select(Consent.contact_id, Consent.channel, Consent.purpose).where(
                Consent.contact_id.in_(ids), Consent.granted.is_(True)
            )
        ):
            granted[contact_id].add((channel, purpose))
        existing = {
            d.idempotency_key: d
            for d in await session.scalars(select(Delivery).where(Delivery.idempotency_key.in_(keys)))
        }
        taken: dict[tuple[int, str], int] = defaultdict(int)
        for contact_id, day, count in await session.execute(
            select(PressureClaim.contact_id, PressureClaim.day, func.count())
            .where(PressureClaim.contact_id.in_(ids), PressureClaim.state == pressure.TAKEN)
            .group_by(PressureClaim.contact_id, PressureClaim.day)
        ):
            taken[(contact_id, day)] = count
        earlier_claims = {
            c.key: c
            for c in await session.scalars(
                select(PressureClaim).where(
                    PressureClaim.key.in_([f"{r.idempotency_key}#{r.deferrals}" for r in requests])
                )
            )
        }
        claims: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        plans: list[Planned] = []
        policy = delivery.pressure_policy
        for request in requests:
            contact = contacts.get(request.contact)
            plan = Planned(request, contact)
            plans.append(plan)
            row = existing.get(request.idempotency_key)
            if row is not None and row.status in FINAL:
                plan.outcome = _outcome_of(row)  # decided before a crash
                continue
            if row is not None and row.status == CLAIMED:
                row.status, row.updated_at = DeliveryStatus.UNCONFIRMED.value, now
                row.reason = "the worker stopped during the send; not resent to avoid a duplicate"
                plan.outcome = _outcome_of(row)
                continue
            prepared = delivery._prepare(request, contact, granted[contact.id] if contact else set())
            if (
                isinstance(prepared, OutgoingMessage)
                and contact
                and request.step.purpose is Purpose.MARKETING
            ):
                if policy.max_per_day > 0:
                    day = pressure.local_day(request.at, delivery._zone(contact))
                    claim_key = f"{request.idempotency_key}#{request.deferrals}"
                    earlier = earlier_claims.get(claim_key)
                    # A retried batch keeps the decision its first attempt made.
                    go = (
                        earlier.state == pressure.TAKEN
                        if earlier
                        else taken[(contact.id, day)] < policy.max_per_day
                    )
                    reason = (
                        None
                        if go
                        else (
                            f"commercial pressure: daily cap of {policy.max_per_day} marketing message(s) "
                            f"reached on {day}: dropped"
                        )
                    )
                    taken[(contact.id, day)] += int(go and earlier is None)
                    claims.append(
                        {
                            "key": claim_key,
                            "contact_id": contact.id,
                            "day": day,
                            "rank": pressure.RANK[request.step.priority],
                            "at": request.at,
                            "state": pressure.TAKEN if go else pressure.YIELDED,
                            "reason": reason,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                    if not go:
                        prepared = reason or "commercial pressure"
            if isinstance(prepared, Deferral):
                values = _ledger_values(request, contact, DeliveryStatus.DEFERRED, prepared.reason, None)
                values["idempotency_key"] = f"{request.idempotency_key}#deferred{request.deferrals}"
                rows.append(values)
                plan.outcome = StepOutcome(
                    step=request.step.id,
                    status=DeliveryStatus.DEFERRED,
                    at=request.at,
                    reason=prepared.reason,
                    until=prepared.until,
                )
            elif isinstance(prepared, str):
                rows.append(_ledger_values(request, contact, DeliveryStatus.SKIPPED, prepared, None))
                plan.outcome = StepOutcome(
                    step=request.step.id, status=DeliveryStatus.SKIPPED, at=request.at, reason=prepared
                )
            else:
                if row is not None:  # queued, or refused for now by the provider: queue it again
                    row.attempts += int(row.status == RETRYING)
                    row.status, row.reason, row.updated_at = QUEUED, None, now
                else:
                    rows.append(_ledger_values(request, contact, QUEUED, None, prepared))
                plan.message = prepared
        if claims:
            await session.execute(pressure.insert_claims(session), claims)
        if rows:
            inserted = set(
                await session.scalars(
                    insert_ignoring_conflicts(session).returning(Delivery.idempotency_key), rows
                )
            )
            for plan in plans:
                # Another worker claimed it between our read and our insert: leave it to them.
                if (
                    plan.message is not None
                    and plan.request.idempotency_key not in inserted
                    and plan.request.idempotency_key not in existing
                ):
                    plan.message = None
                    plan.outcome = StepOutcome(
                        step=plan.request.step.id,
                        status=DeliveryStatus.UNCONFIRMED,
                        at=plan.request.at,
                        reason="claimed by another worker",
                    )
    return plans


async def _claim(session_factory: Callable[[], AsyncSession], plans: list[Planned]) -> list[Planned]:
    """queued → sending, in one statement; what another worker took meanwhile is left out."""
    keys = [p.request.idempotency_key for p in plans]
    async with session_factory() as session, session.begin():
        claimed = set(
            await session.scalars(
                update(Delivery)
                .where(Delivery.idempotency_key.in_(keys), Delivery.status == QUEUED)
                .values(status=CLAIMED, updated_at=datetime.now(UTC))
                .returning(Delivery.idempotency_key)
            )
        )
    for plan in plans:
        if plan.request.idempotency_key not in claimed:
            plan.message = None
            plan.outcome = StepOutcome(
                step=plan.request.step.id,
                status=DeliveryStatus.UNCONFIRMED,
                at=plan.request.at,
                reason="claimed by another worker",
            )
    return [p for p in plans if p.message is not None]


async def _send_all(
    delivery: DeliveryActivities,
    plans: list[Planned],
    rate_per_second: float,
    offset: int,
    started: float,
) -> dict[str, tuple[str, str | None, str | None, str | None, Planned]]:
    loop = asyncio.get_running_loop()
    results: dict[str, tuple[str, str | None, str | None, str | None, Planned]] = {}

    async def one(index: int, plan: Planned) -> None:
        # Paced: the n-th message starts no earlier than n / rate seconds into the batch.
        await asyncio.sleep(max(0.0, started + (offset + index) / rate_per_second - loop.time()))
        assert plan.message is not None
        key = plan.request.idempotency_key
        try:
            result = await delivery.channel.send(plan.message)
        except TransientSendError as error:
            results[key] = (RETRYING, str(error), None, None, plan)
        except PermanentSendError as error:
            results[key] = (DeliveryStatus.FAILED.value, str(error), None, None, plan)
        except UncertainSendError as error:
            results[key] = (DeliveryStatus.UNCONFIRMED.value, str(error), None, None, plan)
        else:
            results[key] = (DeliveryStatus.SENT.value, None, result.provider, result.message_id, plan)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(plans)))
    for status, reason, _, _, plan in results.values():
        plan.outcome = StepOutcome(
            step=plan.request.step.id,
            status=DeliveryStatus(status) if status in FINAL else DeliveryStatus.FAILED,
            at=plan.request.at,
            reason=reason,
        )
    return results


async def _record(
    session_factory: Callable[[], AsyncSession],
    results: dict[str, tuple[str, str | None, str | None, str | None, Planned]],
) -> None:
    if not results:
        return
    now = datetime.now(UTC)
    params = [
        {"k": key, "s": status, "r": reason, "p": provider, "m": message_id, "u": now}
        for key, (status, reason, provider, message_id, _) in results.items()
    ]
    statement = (
        update(Delivery.__table__)
        .where(Delivery.__table__.c.idempotency_key == bindparam("k"))
        .values(
            status=bindparam("s"),
            reason=bindparam("r"),
            provider=func.coalesce(bindparam("p"), Delivery.__table__.c.provider),
            provider_message_id=func.coalesce(bindparam("m"), Delivery.__table__.c.provider_message_id),
            updated_at=bindparam("u"),
        )
    )
    async with session_factory() as session, session.begin():
        await (await session.connection()).execute(statement, params)


def _outcome_of(row: Delivery) -> StepOutcome:
    return StepOutcome(step=row.message, status=DeliveryStatus(row.status), at=row.at, reason=row.reason)
