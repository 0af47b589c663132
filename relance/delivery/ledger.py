"""The delivery ledger: one row per planned message, claimed before the provider is called.

A row is keyed by the message's idempotency key. Claiming it is one
``INSERT … ON CONFLICT DO NOTHING``, so a retried or re-run activity finds the
row and never sends twice (D-07). A row left "sending" means an earlier attempt
called the provider and never came back: it is recorded "unconfirmed" rather
than sent again, since a missing message is better than a duplicate one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from relance.channels.base import OutgoingMessage, TransientSendError
from relance.delivery.message import Message
from relance.delivery.policy import Defer, Skip
from relance.delivery.variants import variant_of
from relance.models.journey import DeliveryStatus, StepOutcome
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery

log = structlog.get_logger("relance.delivery")

BULK_SEND = "broadcast"  # the ledger's scenario name for messages of bulk sends

# Working states, before a final DeliveryStatus.
CLAIMED = "sending"  # handed to the provider, or about to be
RETRYING = "retrying"  # the provider refused for now: free to be claimed again
QUEUED = "queued"  # bulk sends: decided to go, not yet handed over; safe to send after a crash
FINAL = {s.value for s in DeliveryStatus}

STOPPED_DURING_SEND = "the worker stopped during the send; not resent to avoid a duplicate"


@dataclass(frozen=True)
class Attempt:
    """What handing a message to its provider gave (delivery.send), as the ledger records it."""

    status: str  # a DeliveryStatus, or RETRYING
    reason: str | None = None
    provider: str | None = None
    message_id: str | None = None
    refused_for_now: TransientSendError | None = None  # to raise again, so Temporal retries

    @property
    def outcome_status(self) -> DeliveryStatus:
        """The status reported to the workflow: a retrying message counts as failed until retried."""
        return DeliveryStatus(self.status) if self.status in FINAL else DeliveryStatus.FAILED


TAKEN_ELSEWHERE = "claimed by another worker"

Ready = OutgoingMessage | Skip | Defer  # what the policy and the renderer made of a message


def _now() -> datetime:
    return datetime.now(UTC)


def insert_ignoring_conflicts(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the ledger's unique key, on either backend."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Delivery).on_conflict_do_nothing(index_elements=["idempotency_key"])


def values(
    message: Message,
    contact: Contact | None,
    status: str,
    reason: str | None,
    outgoing: OutgoingMessage | None = None,
) -> dict[str, Any]:
    """The ledger row of ``message``, as inserted."""
    now = _now()
    return {
        "idempotency_key": message.key,
        "workflow_id": message.workflow_id,
        "scenario": message.scenario,
        "journey": message.journey,
        "message": message.id,
        "channel": message.channel.value,
        "contact_id": contact.id if contact else None,
        "contact_external_id": message.contact,
        "status": status,
        "reason": reason,
        "at": message.at,
        "recipient": outgoing.to if outgoing else None,
        "subject": outgoing.subject if outgoing else None,
        "variant": variant_of(message.scenario, message.journey, message, message.contact),
        "attempts": 1 if outgoing else 0,
        "created_at": now,
        "updated_at": now,
    }


def outcome(
    message: Message, status: DeliveryStatus, reason: str | None = None, until: datetime | None = None
) -> StepOutcome:
    return StepOutcome(step=message.id, status=status, at=message.at, reason=reason, until=until)


def recorded(row: Delivery) -> StepOutcome:
    """The outcome a ledger row holds."""
    return StepOutcome(step=row.message, status=DeliveryStatus(row.status), at=row.at, reason=row.reason)


def not_sent(
    message: Message, contact: Contact | None, decision: Skip | Defer
) -> tuple[dict[str, Any], StepOutcome]:
    """The row and the outcome of a message that does not go now."""
    if isinstance(decision, Defer):
        deferred = values(message, contact, DeliveryStatus.DEFERRED, decision.reason)
        deferred["idempotency_key"] = message.deferred_key
        return deferred, outcome(message, DeliveryStatus.DEFERRED, decision.reason, decision.until)
    return (
        values(message, contact, DeliveryStatus.SKIPPED, decision.reason),
        outcome(message, DeliveryStatus.SKIPPED, decision.reason),
    )


async def row(session: AsyncSession, key: str) -> Delivery | None:
    return await session.scalar(select(Delivery).where(Delivery.idempotency_key == key))


async def rows(session: AsyncSession, keys: Iterable[str]) -> dict[str, Delivery]:
    return {
        d.idempotency_key: d
        for d in await session.scalars(select(Delivery).where(Delivery.idempotency_key.in_(list(keys))))
    }


def settled(row: Delivery) -> StepOutcome | None:
    """The outcome an earlier attempt left, or None when the row is free to be claimed again."""
    if row.status in FINAL:
        return recorded(row)  # already decided by an earlier attempt
    if row.status == CLAIMED:
        # An earlier attempt called the provider and never came back.
        row.status, row.reason, row.updated_at = DeliveryStatus.UNCONFIRMED, STOPPED_DURING_SEND, _now()
        log.warning("delivery.unconfirmed", key=row.idempotency_key)
        return recorded(row)
    return None


async def claim(
    session: AsyncSession, message: Message, contact: Contact | None, ready: Ready
) -> StepOutcome | None:
    """Write the decision on one message; None when its row is claimed and the message must go."""
    if isinstance(ready, Defer):
        deferred, result = not_sent(message, contact, ready)
        await session.execute(insert_ignoring_conflicts(session).values(**deferred))
        return result
    skip = ready if isinstance(ready, Skip) else None
    status = DeliveryStatus.SKIPPED if skip else CLAIMED
    reason = skip.reason if skip else None
    outgoing = ready if isinstance(ready, OutgoingMessage) else None
    # The claim: one statement; the unique key makes it safe under any retry.
    inserted = await session.scalar(
        insert_ignoring_conflicts(session)
        .values(**values(message, contact, status, reason, outgoing))
        .returning(Delivery.id)
    )
    if inserted is None:
        earlier = await row(session, message.key)
        assert earlier is not None
        done = settled(earlier)
        if done is not None:
            return done
        # RETRYING: the provider refused the earlier attempt; claim the row again.
        earlier.status, earlier.reason, earlier.updated_at = status, reason, _now()
        earlier.attempts += 0 if skip else 1
    if skip:
        return outcome(message, DeliveryStatus.SKIPPED, skip.reason)
    return None


async def finish(session: AsyncSession, key: str, attempt: Attempt) -> StepOutcome:
    """Record what the provider made of one message; a message refused for now reads as failed."""
    changes: dict[str, Any] = {"status": attempt.status, "reason": attempt.reason, "updated_at": _now()}
    if attempt.provider:
        changes |= {"provider": attempt.provider, "provider_message_id": attempt.message_id}
    done = (
        await session.execute(
            update(Delivery)
            .where(Delivery.idempotency_key == key)
            .values(**changes)
            .returning(Delivery.message, Delivery.status, Delivery.at, Delivery.reason)
        )
    ).one()
    return StepOutcome(step=done.message, status=attempt.outcome_status, at=done.at, reason=done.reason)


async def hand_over(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Bulk sends: queued → sending, in one statement; the keys claimed (not those taken meanwhile)."""
    return set(
        await session.scalars(
            update(Delivery)
            .where(Delivery.idempotency_key.in_(keys), Delivery.status == QUEUED)
            .values(status=CLAIMED, updated_at=_now())
            .returning(Delivery.idempotency_key)
        )
    )


async def finish_many(session: AsyncSession, attempts: dict[str, Attempt]) -> None:
    """Bulk sends: what the provider made of each message, in one executemany."""
    if not attempts:
        return
    now = _now()
    params = [
        {"k": key, "s": a.status, "r": a.reason, "p": a.provider, "m": a.message_id, "u": now}
        for key, a in attempts.items()
    ]
    table = cast(Table, Delivery.__table__)  # typed as a FromClause; Core's executemany wants the Table
    statement = (
        update(table)
        .where(table.c.idempotency_key == bindparam("k"))
        .values(
            status=bindparam("s"),
            reason=bindparam("r"),
            provider=func.coalesce(bindparam("p"), table.c.provider),
            provider_message_id=func.coalesce(bindparam("m"), table.c.provider_message_id),
            updated_at=bindparam("u"),
        )
    )
    await (await session.connection()).execute(statement, params)
