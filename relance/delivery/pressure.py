"""Commercial pressure (D-06): at most N marketing messages per contact per local day.

A marketing message about to go out asks for one of the contact's slots for
that calendar day (in the contact's time zone). Messages due at the same time
compete: when another journey of the contact is running, the message registers
as a candidate and waits a short arbitration window; then the candidates are
ranked by priority (very_important > important > low), ties broken by message key
so the outcome is repeatable. Those
that fit under the cap go; the others are deferred to the next day or dropped,
as their message says. Transactional and legal messages never ask.

Decisions are made with the contact locked (a row lock on PostgreSQL; SQLite
transactions hold the write lock from their start), so two workers deciding
for the same contact in the same second see each other's claims.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.journey import Priority
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import PressureClaim
from relance.models.tables.journey import JourneyRun

CANDIDATE, TAKEN, YIELDED = "candidate", "taken", "yielded"
RANK = {Priority.VERY_IMPORTANT: 0, Priority.IMPORTANT: 1, Priority.LOW: 2}
# A candidate whose worker vanished stops blocking the others after this long.
STALE_CANDIDATE = timedelta(minutes=10)


@dataclass(frozen=True)
class PressurePolicy:
    max_per_day: int = 1  # 0: no cap
    arbitration_seconds: float = 2.0

    def has_room(self, taken: int) -> bool:
        """The daily cap: whether one more message fits after ``taken`` of the day."""
        return taken < self.max_per_day

    def full(self, day: str) -> str:
        return f"daily cap of {self.max_per_day} marketing message(s) reached on {day}"


@dataclass(frozen=True)
class Verdict:
    go: bool
    reason: str | None = None


@dataclass(frozen=True)
class Ask:
    """One message's request for a slot of its contact's local day."""

    key: str  # the message's claim key: one per attempt after a deferral
    contact_id: int
    day: str
    priority: Priority
    at: datetime

    def row(self, state: str, reason: str | None = None) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "key": self.key,
            "contact_id": self.contact_id,
            "day": self.day,
            "rank": RANK[self.priority],
            "at": self.at,
            "state": state,
            "reason": reason,
            "created_at": now,
            "updated_at": now,
        }


def local_day(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).date().isoformat()


def same_time_next_day(at: datetime, zone: ZoneInfo) -> datetime:
    """The same local wall time one calendar day later (23 or 25 hours across a DST change)."""
    local = at.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), local.time(), tzinfo=zone).astimezone(UTC)


async def lock_contact(session: AsyncSession, external_id: str) -> Contact | None:
    """The contact, locked until the transaction ends (SQLite: the transaction's write lock)."""
    return await session.scalar(select(Contact).where(Contact.external_id == external_id).with_for_update())


async def lock_contacts(session: AsyncSession, external_ids: Iterable[str]) -> dict[str, Contact]:
    """The contacts found, by external id, locked until the transaction ends, in id order (no deadlock)."""
    return {
        c.external_id: c
        for c in await session.scalars(
            select(Contact)
            .where(Contact.external_id.in_(list(set(external_ids))))
            .order_by(Contact.id)
            .with_for_update()
        )
    }


async def register(
    session: AsyncSession,
    policy: PressurePolicy,
    *,
    key: str,
    contact: Contact,
    workflow_id: str,
    zone: ZoneInfo,
    at: datetime,
    priority: Priority,
    wait_for_rivals: bool = True,
) -> Verdict | None:
    """Ask for a slot, the contact being locked in ``session``.

    Returns the verdict, or None when a rival may still come: the caller commits,
    waits ``policy.arbitration_seconds`` and calls :func:`decide`. Idempotent per
    ``key``: a retried activity gets the decision already made.
    """
    claim = await session.scalar(select(PressureClaim).where(PressureClaim.key == key))
    if claim is not None and claim.state != CANDIDATE:
        return Verdict(go=claim.state == TAKEN, reason=claim.reason)
    if claim is None:
        claim = PressureClaim(**Ask(key, contact.id, local_day(at, zone), priority, at).row(CANDIDATE))
        session.add(claim)
        await session.flush()
    rivals_possible = (
        wait_for_rivals
        and policy.arbitration_seconds > 0
        and await session.scalar(
            select(
                exists().where(
                    JourneyRun.contact_id == contact.id,
                    JourneyRun.status.in_(("starting", "running")),
                    JourneyRun.workflow_id != workflow_id,
                )
            )
        )
    )
    if rivals_possible:
        return None
    return await decide(session, policy, key=key)


async def decide(session: AsyncSession, policy: PressurePolicy, *, key: str) -> Verdict:
    """Rank this claim against the day's others; the contact must be locked in ``session``."""
    mine = await session.scalar(select(PressureClaim).where(PressureClaim.key == key))
    assert mine is not None, "register() first"
    if mine.state != CANDIDATE:
        return Verdict(go=mine.state == TAKEN, reason=mine.reason)
    now = datetime.now(UTC)
    claims = list(
        await session.scalars(
            select(PressureClaim).where(
                PressureClaim.contact_id == mine.contact_id,
                PressureClaim.day == mine.day,
                PressureClaim.state.in_((CANDIDATE, TAKEN)),
                PressureClaim.key != key,
            )
        )
    )
    taken = [c for c in claims if c.state == TAKEN]
    ahead = [
        c
        for c in claims
        if c.state == CANDIDATE
        # Not the due time: rivals due "together" differ by milliseconds of scheduling.
        and (c.rank, c.key) < (mine.rank, mine.key)
        and now - c.created_at < STALE_CANDIDATE
    ]
    go = policy.has_room(len(taken) + len(ahead))
    mine.state, mine.updated_at = (TAKEN if go else YIELDED), now
    if not go:
        # Named the same whichever of the rivals committed first, so simulations are repeatable.
        if any(c.rank < mine.rank for c in taken + ahead):
            why = f"gave way to a higher-priority message on {mine.day}"
        else:
            why = policy.full(mine.day)
        mine.reason = f"commercial pressure: {why}"
    await session.flush()
    return Verdict(go=go, reason=mine.reason)


async def decide_at_once(
    session: AsyncSession, policy: PressurePolicy, asks: Sequence[Ask]
) -> dict[str, Verdict]:
    """Bulk sends: a verdict for each ask, in order, without waiting for rivals.

    The contacts must be locked in ``session``. Nothing is written: the caller
    inserts the claims (:func:`insert_claims`, rows from :meth:`Ask.row`) with
    what became of each message.
    """
    contact_ids = list({a.contact_id for a in asks})
    taken: dict[tuple[int, str], int] = defaultdict(int)
    for contact_id, day, count in await session.execute(
        select(PressureClaim.contact_id, PressureClaim.day, func.count())
        .where(PressureClaim.contact_id.in_(contact_ids), PressureClaim.state == TAKEN)
        .group_by(PressureClaim.contact_id, PressureClaim.day)
    ):
        taken[(contact_id, day)] = count
    earlier_claims = {
        c.key: c
        for c in await session.scalars(
            select(PressureClaim).where(PressureClaim.key.in_([a.key for a in asks]))
        )
    }
    verdicts: dict[str, Verdict] = {}
    for ask in asks:
        earlier = earlier_claims.get(ask.key)
        # A retried batch keeps the decision its first attempt made.
        go = earlier.state == TAKEN if earlier else policy.has_room(taken[(ask.contact_id, ask.day)])
        taken[(ask.contact_id, ask.day)] += int(go and earlier is None)
        verdicts[ask.key] = Verdict(
            go=go, reason=None if go else f"commercial pressure: {policy.full(ask.day)}"
        )
    return verdicts


def insert_claims(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the claim key, on either backend (bulk sends)."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(PressureClaim).on_conflict_do_nothing(index_elements=["key"])
