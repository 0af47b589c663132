"""Erasure of one contact (GDPR right to erasure): stop what runs for them, purge their personal data.

1. The contact is marked ``erased_at`` at once, so that no event or update reaches them meanwhile.
2. Their running journeys get the ``cancel`` signal (the ledger records why each remaining message
   is not sent); their referral, thank-you, gift-card and soft-bounce workflows are cancelled.
   We wait for them to close, so that nothing they write lands after the purge; whatever does
   not close in time is terminated.
3. One transaction purges what identifies the person and keeps what anonymous counts need
   (statuses, messages, dates, amounts). docs/erasure.md lists the decision for every column.

The external id becomes a tombstone ``erased:<hmac of the id>``: the same id posted later is a new
contact, and erasing that id again is recognised as done.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field
from sqlalchemy import Text, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from relance.bounces.service import base_key
from relance.contacts.upsert import ERASED_PREFIX
from relance.models.journey import CancelRequest
from relance.models.referral import ReferralInput
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent, PressureClaim
from relance.models.tables.event import Event
from relance.models.tables.gift_card import GiftCard
from relance.models.tables.journey import JourneyRun
from relance.models.tables.list import ListMember
from relance.models.tables.points import PointsEntry
from relance.models.tables.referral import Referral, SponsorCode
from relance.referrals.guards import normal_email, normal_phone
from relance.workflows import ids
from relance.workflows.journey import JourneyWorkflow

log = structlog.get_logger("relance.erasure")

ERASED = "[erased]"
OPEN_JOURNEY = ("running", "starting")
OPEN_REFERRAL = ("invited", "reconciled", "validated")  # their workflow is stopped: they can go no further
WAIT_SECONDS = 30.0  # for the stopped workflows to close before the purge


class UnknownContact(LookupError):
    """No contact has this external id (nor had it, erased)."""

    field = "external_id"
    status = 404

    def __init__(self, external_id: str) -> None:
        self.message = f"no contact '{external_id}': check the external id (nothing was erased)"
        super().__init__(self.message)


class ErasureReport(BaseModel):
    external_id: str = Field(description="the id the erasure was asked for")
    status: Literal["erased", "already_erased"]
    message: str
    erased_at: datetime | None = None
    journeys_cancelled: int = Field(0, description="running journeys sent the cancel signal")
    workflows_stopped: int = Field(0, description="referral, thank-you, gift-card and soft-bounce workflows")
    workflows_terminated: int = Field(0, description="of those, the ones that did not close in time")
    rows: dict[str, int] = Field(default_factory=dict, description="rows purged, per table")


def tombstone(secret: str, external_id: str) -> str:
    """Keyed, so that nobody holding a list of ids can tell which one was erased without the key."""
    digest = hmac.new(secret.encode(), external_id.encode(), hashlib.sha256).hexdigest()
    return f"{ERASED_PREFIX}{digest[:16]}"


async def erase_contact(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    secret: str,
    external_id: str,
    reason: str | None = None,
    *,
    wait_seconds: float = WAIT_SECONDS,
) -> ErasureReport:
    """Erase one contact; a second call is a no-op that says so. Raises UnknownContact."""
    why = f"contact erased ({reason})" if reason else "contact erased"
    async with sessions() as session, session.begin():
        contact = await session.scalar(select(Contact).where(Contact.external_id == external_id))
        if contact is None or contact.external_id.startswith(ERASED_PREFIX):
            erased = contact or await _erased_as(session, tombstone(secret, external_id))
            if erased is None:
                raise UnknownContact(external_id)
            when = erased.erased_at.isoformat(timespec="seconds") if erased.erased_at else "earlier"
            return ErasureReport(
                external_id=external_id,
                status="already_erased",
                message=f"contact '{external_id}' was already erased ({when}): nothing to do",
                erased_at=erased.erased_at,
            )
        # From now on ingestion refuses this contact: no journey can start while we stop the others.
        contact.erased_at = contact.erased_at or datetime.now(UTC)
        erased_at = contact.erased_at
        targets = await _targets(session, contact)
    stop = await _stop(client, targets, why, wait_seconds)
    async with sessions() as session, session.begin():
        rows = await _purge(session, external_id, secret, why)
    log.info(
        "contact.erased",
        journeys=stop.journeys,
        workflows=stop.others,
        terminated=stop.terminated,
        rows=rows,
    )
    return ErasureReport(
        external_id=external_id,
        status="erased",
        message=f"contact '{external_id}' erased: personal data purged, anonymous counts kept",
        erased_at=erased_at,
        journeys_cancelled=stop.journeys,
        workflows_stopped=stop.others,
        workflows_terminated=stop.terminated,
        rows=rows,
    )


async def _erased_as(session: AsyncSession, tomb: str) -> Contact | None:
    # The tombstone of a contact re-created with the same id and erased again carries a suffix.
    return await session.scalar(
        select(Contact)
        .where(or_(Contact.external_id == tomb, Contact.external_id.startswith(f"{tomb}-")))
        .order_by(Contact.id)
        .limit(1)
    )


# --- stopping the workflows ---------------------------------------------------------------------


@dataclass
class _Targets:
    journeys: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    sponsored: list[str] = field(default_factory=list)  # referral workflows where the contact is sponsor


@dataclass
class _Stopped:
    journeys: int = 0
    others: int = 0
    terminated: int = 0


async def _targets(session: AsyncSession, contact: Contact) -> _Targets:
    targets = _Targets()
    targets.journeys = list(
        await session.scalars(
            select(JourneyRun.workflow_id).where(
                JourneyRun.contact_id == contact.id, JourneyRun.status.in_(OPEN_JOURNEY)
            )
        )
    )
    referrals = (
        await session.execute(
            select(Referral.id, Referral.sponsor_id).where(
                or_(Referral.sponsor_id == contact.id, Referral.referee_id == contact.id),
                Referral.status != "refused",  # refused ones never had a workflow
            )
        )
    ).all()
    for referral_id, sponsor_id in referrals:
        targets.others.append(ids.referral(referral_id))
        if sponsor_id == contact.id:
            targets.sponsored.append(ids.referral(referral_id))
            targets.others.append(ids.gift_card(f"reward-{referral_id}"))  # the sponsor's reward
    cards = await session.scalars(select(GiftCard.key).where(GiftCard.contact_id == contact.id))
    targets.others += [ids.gift_card(key) for key in cards]
    bounced = await session.scalars(
        select(Delivery.idempotency_key)
        .join(DeliveryEvent, DeliveryEvent.delivery_key == Delivery.idempotency_key)
        .where(Delivery.contact_id == contact.id, DeliveryEvent.kind == "soft_bounce")
    )
    targets.others += [ids.soft_bounce(base_key(key)) for key in bounced]
    targets.others = list(dict.fromkeys(targets.others))
    return targets


async def _stop(client: Client, targets: _Targets, why: str, wait_seconds: float) -> _Stopped:
    stopped = _Stopped()
    # The sponsor's thank-you workflows are named after their batch, which only the referral's input holds.
    thanks = [ids.referral_thanks(batch) for batch in await _batches(client, targets.sponsored)]
    closing: list[WorkflowHandle[Any, Any]] = []
    for wf_id in targets.journeys:
        handle = client.get_workflow_handle(wf_id)
        # The journey's own cancel: the ledger gets a skipped row with the reason for what remains.
        if await _tolerating_closed(handle.signal(JourneyWorkflow.cancel, CancelRequest(reason=why))):
            stopped.journeys += 1
            closing.append(handle)
    for wf_id in dict.fromkeys(targets.others + thanks):
        handle = client.get_workflow_handle(wf_id)
        # These have no cancel signal of their own: Temporal's cancellation stops them where they wait.
        if await _tolerating_closed(handle.cancel()):
            stopped.others += 1
            closing.append(handle)
    closed = await asyncio.gather(*(_closed(h, why, wait_seconds) for h in closing))
    stopped.terminated = closed.count(False)
    return stopped


async def _tolerating_closed(call: Any) -> bool:
    """Run the call; False when the workflow does not exist or is over already (nothing to stop)."""
    try:
        await call
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _closed(handle: WorkflowHandle[Any, Any], why: str, wait_seconds: float) -> bool:
    """Wait for the workflow to close; terminate it when it does not in time (False)."""
    try:
        await asyncio.wait_for(handle.result(), wait_seconds)
    except WorkflowFailureError:
        pass  # cancelled: the expected end of the non-journey workflows
    except TimeoutError:
        await _tolerating_closed(handle.terminate(reason=why))
        log.warning("erasure.terminated", workflow_id=handle.id)
        return False
    return True


async def _batches(client: Client, referral_workflows: list[str]) -> list[str]:
    batches: list[str] = []
    for wf_id in referral_workflows:
        try:
            history = await client.get_workflow_handle(wf_id).fetch_history()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue  # past the retention period: its thank-you is long gone too
            raise
        if not history.events:
            continue
        started = history.events[0].workflow_execution_started_event_attributes
        [input] = await client.data_converter.decode(list(started.input.payloads), [ReferralInput])
        if isinstance(input, ReferralInput) and input.batch_id:
            batches.append(input.batch_id)
    return list(dict.fromkeys(batches))


# --- the purge ------------------------------------------------------------------------------------


class _Scrub:
    """Removes what names the person from free text that is otherwise kept (reasons, notes)."""

    def __init__(self, contact: Contact) -> None:
        exact = [v for v in (contact.email, contact.phone) if v and v.strip()]
        names = [v for v in (contact.first_name, contact.last_name) if v and len(v.strip()) > 1]
        parts = [re.escape(v.strip()) for v in exact] + [rf"\b{re.escape(v.strip())}\b" for v in names]
        self._pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None
        self.needles = [v.strip().lower() for v in (contact.email, contact.phone) if v and v.strip()]

    def __call__(self, text: str | None) -> str | None:
        if text is None or self._pattern is None:
            return text
        return self._pattern.sub(ERASED, text)

    def mentions(self, value: Any) -> bool:
        if isinstance(value, str):
            return any(n in value.lower() for n in self.needles)
        if isinstance(value, dict):
            return any(self.mentions(v) for v in value.values())
        if isinstance(value, list):
            return any(self.mentions(v) for v in value)
        return False

    def redact(self, value: Any) -> Any:
        """JSON of someone else that mentions the person (a sponsor's list of referees): each entry
        that mentions them becomes {"erased": true}, so lists keep their length for counts."""
        if isinstance(value, str):
            return None if self.mentions(value) else value
        if isinstance(value, list):
            erased = {"erased": True}
            return [erased if isinstance(v, dict) and self.mentions(v) else self.redact(v) for v in value]
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        return value


def _digest(secret: str, text: str) -> str:
    return f"{ERASED_PREFIX}{hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:16]}"


async def _free_tombstone(session: AsyncSession, secret: str, external_id: str) -> str:
    tomb = tombstone(secret, external_id)
    taken = set(
        await session.scalars(
            select(Contact.external_id).where(
                or_(Contact.external_id == tomb, Contact.external_id.startswith(f"{tomb}-"))
            )
        )
    )
    number = 0
    while (candidate := tomb if number == 0 else f"{tomb}-{number}") in taken:
        number += 1
    return candidate


async def _purge(session: AsyncSession, external_id: str, secret: str, why: str) -> dict[str, int]:
    contact = await session.scalar(select(Contact).where(Contact.external_id == external_id))
    assert contact is not None, "the contact is erased only here"
    now = datetime.now(UTC)
    tomb = await _free_tombstone(session, secret, external_id)
    scrub = _Scrub(contact)
    rows: dict[str, int] = {}

    # Journey ids (and the ledger keys made from them) carry the external id: they take the tombstone.
    renamed: dict[str, str] = {}
    runs = list(await session.scalars(select(JourneyRun).where(JourneyRun.contact_id == contact.id)))
    for run in runs:
        old_prefix = ids.journey(run.scenario, run.journey, external_id, "")
        if run.workflow_id.startswith(old_prefix):
            new_prefix = ids.journey(run.scenario, run.journey, tomb, "")
            new_id = new_prefix + run.workflow_id[len(old_prefix) :]
            renamed[run.workflow_id] = new_id
            run.workflow_id = new_id
        if run.status in OPEN_JOURNEY:  # did not close in time, or never reached Temporal
            run.status, run.ended_at, run.end_reason = "cancelled", now, f"cancelled: {why}"
        run.end_reason = scrub(run.end_reason)
    rows["journeys"] = len(runs)

    rekeyed: dict[str, str] = {}
    deliveries = list(
        await session.scalars(
            select(Delivery).where(
                or_(Delivery.contact_id == contact.id, Delivery.contact_external_id == external_id)
            )
        )
    )
    for row in deliveries:
        key = _rekey(row.idempotency_key, row.workflow_id, renamed, external_id, tomb)
        if key != row.idempotency_key:
            rekeyed[row.idempotency_key] = key
            row.idempotency_key = key
        row.workflow_id = renamed.get(row.workflow_id, row.workflow_id)
        row.contact_external_id = tomb
        row.recipient = row.subject = row.provider_message_id = None
        row.reason = scrub(row.reason)
    rows["deliveries"] = len(deliveries)

    events_after = 0
    if rekeyed:
        for feedback in await session.scalars(
            select(DeliveryEvent).where(DeliveryEvent.delivery_key.in_(list(rekeyed)))
        ):
            feedback.delivery_key = rekeyed[feedback.delivery_key]
            feedback.url = feedback.detail = feedback.source_id = None
            events_after += 1
    rows["delivery_events"] = events_after

    claims = list(await session.scalars(select(PressureClaim).where(PressureClaim.contact_id == contact.id)))
    for claim in claims:
        base, mark, attempt = claim.key.rpartition("#")
        if mark and base in rekeyed:
            claim.key = f"{rekeyed[base]}#{attempt}"
        claim.reason = scrub(claim.reason)
    rows["pressure_claims"] = len(claims)

    rows["consents"] = await _deleted(session, delete(Consent).where(Consent.contact_id == contact.id))
    memberships = delete(ListMember).where(ListMember.contact_id == contact.id)
    rows["list_members"] = await _deleted(session, memberships)
    rows["sponsor_codes"] = await _deleted(  # the code spells the sponsor's first name
        session, delete(SponsorCode).where(SponsorCode.contact_id == contact.id)
    )

    own_events = list(await session.scalars(select(Event).where(Event.contact_id == contact.id)))
    for event in own_events:
        event.properties, event.key = {}, None  # type and occurred_at stay for the counts
    others = 0
    for needle in scrub.needles:
        mentioning = await session.scalars(
            select(Event).where(
                Event.contact_id != contact.id,
                func.lower(cast(Event.properties, Text)).contains(needle, autoescape=True),
            )
        )
        for event in mentioning:
            if scrub.mentions(event.properties):
                event.properties = scrub.redact(event.properties)
                others += 1
    rows["events"] = len(own_events) + others

    rows["referrals"] = await _purge_referrals(
        session, contact, normal_email(contact.email), normal_phone(contact.phone), scrub, why, now
    )

    cards = list(await session.scalars(select(GiftCard).where(GiftCard.contact_id == contact.id)))
    for card in cards:  # a bearer code and its link: whoever holds them spends the card
        card.code, card.url, card.updated_at = _digest(secret, card.code), None, now
    rows["gift_cards"] = len(cards)

    points = list(await session.scalars(select(PointsEntry).where(PointsEntry.contact_id == contact.id)))
    for entry in points:  # the caller's key and wording may name the person; the amounts stay
        entry.key, entry.reason = _digest(secret, entry.key), scrub(entry.reason) or ""
    rows["points_ledger"] = len(points)

    contact.external_id = tomb
    contact.email = contact.phone = contact.first_name = contact.last_name = None
    contact.locale = contact.time_zone = None
    contact.attributes = {}
    contact.last_purchase_at = None
    contact.updated_at = now
    contact.erased_at = contact.erased_at or now
    rows["contacts"] = 1
    await session.flush()
    return {table: count for table, count in rows.items() if count}


def _rekey(key: str, workflow_id: str, renamed: dict[str, str], external_id: str, tomb: str) -> str:
    if workflow_id in renamed and key.startswith(workflow_id):
        return renamed[workflow_id] + key[len(workflow_id) :]  # journey steps, deferrals, resends
    bulk = f"{workflow_id}:{external_id}:"
    if workflow_id.startswith("broadcast:") and key.startswith(bulk):
        return f"{workflow_id}:{tomb}:" + key[len(bulk) :]
    return key


async def _deleted(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


async def _purge_referrals(
    session: AsyncSession,
    contact: Contact,
    email: str | None,
    phone: str | None,
    scrub: _Scrub,
    why: str,
    now: datetime,
) -> int:
    """As referee their address goes (found by contact or by address: refused invitations too);
    the status stays, except open referrals whose workflow was stopped: abandoned."""
    as_referee = [Referral.referee_id == contact.id]
    if email:
        as_referee.append(Referral.referee_email == email)
    if phone:
        as_referee.append(Referral.referee_phone == phone)
    referrals = list(
        await session.scalars(select(Referral).where(or_(Referral.sponsor_id == contact.id, *as_referee)))
    )
    for referral in referrals:
        if (
            referral.referee_id == contact.id
            or _same(referral.referee_email, email)
            or _same(referral.referee_phone, phone)
        ):
            referral.referee_email = referral.referee_phone = None
        if referral.status in OPEN_REFERRAL:
            referral.status, referral.reason = "abandoned", why
        referral.reason = scrub(referral.reason)
        referral.updated_at = now
    # The other party's messages of these referrals name this person in their subject.
    workflows = [ids.referral(r.id) for r in referrals]
    for chunk in _chunks(workflows, 500):
        for row in await session.scalars(select(Delivery).where(Delivery.workflow_id.in_(chunk))):
            row.subject = None
    return len(referrals)


def _same(stored: str | None, own: str | None) -> bool:
    return stored is not None and stored == own


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = ["ERASED_PREFIX", "ErasureReport", "UnknownContact", "erase_contact", "tombstone"]
