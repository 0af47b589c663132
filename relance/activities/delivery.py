"""The one delivery path: eligibility, render, ledger, send, record.

Every planned message gets a ledger row keyed by (workflow, step, channel).
The row is claimed ("sending") before the provider is called, so a retried or
re-run activity finds it and never sends twice (D-07). If the worker dies
between the send and the record, the next attempt finds the claim and marks
the row "unconfirmed" instead of sending again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from relance.bounces.service import RESEND_MARK
from relance.channels.base import (
    ChannelProvider,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    UncertainSendError,
)
from relance.contacts.consent import granted_consents, ineligibility
from relance.core.tokens import Signer
from relance.delivery import pressure
from relance.delivery.pressure import PressurePolicy, Verdict
from relance.delivery.sms_hours import next_opening, parse_hour
from relance.delivery.tracking import track_html
from relance.lists import service as lists
from relance.models.journey import (
    BounceEnd,
    Channel,
    DeliveryRequest,
    DeliveryStatus,
    JourneyEnd,
    OnPressure,
    Purpose,
    ResendRequest,
    Sender,
    SkipRequest,
    StepOutcome,
    StepSpec,
    TriggerEvent,
)
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery
from relance.models.tables.event import Event
from relance.models.tables.journey import JourneyRun
from relance.reports.experiments import HOLDOUT, template_of, variant_of
from relance.scenarios.loader import ScenarioError, ScenarioSet
from relance.templates.engine import TemplateError, TemplateStore
from relance.workflows import ids

log = structlog.get_logger("relance.delivery")
BULK_SEND = "broadcast"  # the ledger's scenario name for messages of bulk sends

CLAIMED = "sending"
RETRYING = "retrying"
_FINAL = {s.value for s in DeliveryStatus}


def _outcome(row: Delivery) -> StepOutcome:
    return StepOutcome(step=row.message, status=DeliveryStatus(row.status), at=row.at, reason=row.reason)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryActivities:
    sessions: async_sessionmaker[AsyncSession]
    templates: TemplateStore
    channel: ChannelProvider
    sender: str
    scenarios: Callable[[], ScenarioSet] | None = None  # the current files, for S-06
    signer: Signer | None = None  # signs the unsubscribe links
    default_time_zone: str = "Europe/Paris"  # for contacts without one
    tracking: bool = True  # open pixel and click links in HTML parts
    public_url: str = "http://127.0.0.1:8000"
    pressure_policy: PressurePolicy = field(default_factory=PressurePolicy)  # D-06 daily cap

    @activity.defn(name="deliver_message")
    async def deliver(self, request: DeliveryRequest) -> StepOutcome:
        capped = (
            request.step.purpose is Purpose.MARKETING
            and self.pressure_policy.max_per_day > 0
            and not request.resend  # the same message again: its slot is already counted
        )
        claim_key = f"{request.idempotency_key}#{request.deferrals}"
        verdict: Verdict | None = None
        async with self.sessions() as session, session.begin():
            if capped:
                contact = await pressure.lock_contact(session, request.contact)
            else:
                contact = await session.scalar(select(Contact).where(Contact.external_id == request.contact))
            granted = await granted_consents(session, contact.id) if contact else set()
            salesperson = (
                await lists.salesperson_of(session, contact.id)
                if contact and request.step.sender is Sender.SALESPERSON
                else None
            )
            prepared = self._prepare(request, contact, granted, salesperson)
            arbitrating = capped and isinstance(prepared, OutgoingMessage) and contact is not None
            if arbitrating:
                assert contact is not None
                verdict = await pressure.register(
                    session,
                    self.pressure_policy,
                    key=claim_key,
                    contact=contact,
                    workflow_id=request.workflow_id,
                    zone=self._zone(contact),
                    at=request.at,
                    priority=request.step.priority,
                    wait_for_rivals=request.arbitrate,
                )
            decided: StepOutcome | None = None
            if verdict is not None or not arbitrating:
                applied = self._apply(verdict, request, prepared, contact)
                decided = await self._record(session, request, contact, applied)
        if arbitrating and verdict is None:
            # Another journey of this contact may have a message due now: let it register.
            await asyncio.sleep(self.pressure_policy.arbitration_seconds)
            async with self.sessions() as session, session.begin():
                contact = await pressure.lock_contact(session, request.contact)
                verdict = await pressure.decide(session, self.pressure_policy, key=claim_key)
                applied = self._apply(verdict, request, prepared, contact)
                decided = await self._record(session, request, contact, applied)
        if decided is not None:
            return decided
        assert isinstance(prepared, OutgoingMessage)
        return await self._send(request.idempotency_key, prepared)

    def _apply(
        self,
        verdict: Verdict | None,
        request: DeliveryRequest,
        prepared: OutgoingMessage | str | Deferral,
        contact: Contact | None,
    ) -> OutgoingMessage | str | Deferral:
        """The message, or what commercial pressure made of it: dropped or moved to the next day."""
        if verdict is None or verdict.go:
            return prepared
        reason = verdict.reason or "commercial pressure"
        if request.step.on_pressure is OnPressure.DROP:
            return f"{reason}: dropped"
        zone = self._zone(contact)
        until = pressure.same_time_next_day(request.at, zone)
        local = until.astimezone(zone).isoformat(timespec="minutes")
        return Deferral(until=until, reason=f"{reason}: deferred to {local}")

    def _zone(self, contact: Contact | None) -> ZoneInfo:
        return ZoneInfo((contact.time_zone if contact else None) or self.default_time_zone)

    async def _record(
        self,
        session: AsyncSession,
        request: DeliveryRequest,
        contact: Contact | None,
        prepared: OutgoingMessage | str | Deferral,
    ) -> StepOutcome | None:
        """Write the decision to the ledger; None when the row is claimed and the message must go."""
        key = request.idempotency_key
        if isinstance(prepared, Deferral):
            # The step's own row stays free for the later attempt; the deferral gets its own.
            deferred = _ledger_values(request, contact, DeliveryStatus.DEFERRED, prepared.reason, None)
            deferred["idempotency_key"] = f"{key}#deferred{request.deferrals}"
            await session.execute(insert_ignoring_conflicts(session).values(**deferred))
            return StepOutcome(
                step=request.step.id,
                status=DeliveryStatus.DEFERRED,
                at=request.at,
                reason=prepared.reason,
                until=prepared.until,
            )
        skip_reason = prepared if isinstance(prepared, str) else None
        status = DeliveryStatus.SKIPPED if skip_reason else CLAIMED
        values = _ledger_values(request, contact, status, skip_reason, prepared)
        # The claim: one statement; the unique key makes it safe under any retry.
        inserted = await session.scalar(
            insert_ignoring_conflicts(session).values(**values).returning(Delivery.id)
        )
        if inserted is None:
            row = await self._ledger_row(session, key)
            assert row is not None
            if row.status in _FINAL:
                return _outcome(row)  # already decided by an earlier attempt
            if row.status == CLAIMED:
                # An earlier attempt called the provider and never came back.
                row.status = DeliveryStatus.UNCONFIRMED
                row.reason = "the worker stopped during the send; not resent to avoid a duplicate"
                row.updated_at = _now()
                log.warning("delivery.unconfirmed", key=key)
                return _outcome(row)
            # RETRYING: the provider refused the earlier attempt; claim the row again.
            row.status, row.reason, row.updated_at = status, skip_reason, _now()
            row.attempts += 0 if skip_reason else 1
        if skip_reason:
            return StepOutcome(step=request.step.id, status=status, at=request.at, reason=skip_reason)
        return None

    def _prepare(
        self,
        request: DeliveryRequest,
        contact: Contact | None,
        granted: set[tuple[str, str]],
        salesperson: lists.Salesperson | None = None,
    ) -> OutgoingMessage | str | Deferral:
        """The message to send, the reason not to send it, or when to try again."""
        step = request.step
        if self._disabled_now(request):
            return "message disabled in the scenario"
        if contact is None:
            return "contact not found (erased or never imported)"
        variant = variant_of(request.scenario, request.journey, step, request.contact)
        if variant == HOLDOUT:
            return "holdout: in the control group of this message's test, gets no message"
        refusal = ineligibility(contact, granted, step.channel, step.purpose, request.at)
        if refusal:
            return refusal
        deferral = self._outside_sms_hours(request, contact)
        if deferral is not None:
            return deferral
        to = contact.email if step.channel is Channel.EMAIL else contact.phone
        if not to:
            return f"contact has no {'email address' if step.channel is Channel.EMAIL else 'phone number'}"
        unsubscribe = self._unsubscribe_link(contact, request.idempotency_key)
        # D-10: from and signed by the salesperson of the contact's list, when asked and assigned.
        sender = (
            str(Address(salesperson.name, addr_spec=str(salesperson.email))) if salesperson else self.sender
        )
        sender_name, sender_email = parseaddr(sender)
        context = _context(request, contact) | {
            "links": {
                "unsubscribe": unsubscribe,
                "opt_in": self._opt_in_link(contact, step.channel, request.idempotency_key),
            },
            "sender": {"name": sender_name, "email": sender_email},
        }
        try:
            template = template_of(step, variant)
            rendered = self.templates.render(template, step.channel, context, locale=contact.locale)
        except TemplateError as error:
            return f"template error: {error}"
        html = rendered.html
        if html is not None and self.signer is not None and self.tracking:
            html = track_html(html, request.idempotency_key, self.signer, self.public_url)
        headers: dict[str, str] = {}
        if step.channel is Channel.EMAIL and step.purpose is Purpose.MARKETING:
            # RFC 8058: mailbox providers show an unsubscribe button that POSTs to this URL.
            headers = {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return OutgoingMessage(
            idempotency_key=request.idempotency_key,
            channel=step.channel,
            purpose=step.purpose,
            to=to,
            sender=sender,
            subject=rendered.subject,
            text=rendered.text,
            html=html,
            headers=headers,
        )

    def _outside_sms_hours(self, request: DeliveryRequest, contact: Contact) -> Deferral | None:
        window = request.step.sms_window
        if request.step.channel is not Channel.SMS or window is None:
            return None
        zone = self._zone(contact)
        zone_name = zone.key
        start, end = parse_hour(window[0]), parse_hour(window[1])
        opening = next_opening(request.at, zone, start, end)
        if opening is None:
            return None
        local = opening.astimezone(zone).isoformat(timespec="minutes")
        return Deferral(
            until=opening,
            reason=f"outside SMS hours ({window[0]}–{window[1]} {zone_name}): deferred to {local}",
        )

    def _unsubscribe_link(self, contact: Contact, delivery: str) -> str:
        signer = self.signer
        if signer is None:
            return f"{self.public_url}/u/unavailable"
        token = signer.unsubscribe_token(contact.external_id, delivery=delivery)
        return f"{self.public_url.rstrip('/')}/u/{token}"

    def _opt_in_link(self, contact: Contact, channel: Channel, delivery: str) -> str:
        """R-05: consent to marketing on the channel the message came by (a referee's invitation)."""
        signer = self.signer
        if signer is None:
            return f"{self.public_url}/o/unavailable"
        token = signer.opt_in_token(contact.external_id, channel.value, delivery=delivery)
        return f"{self.public_url.rstrip('/')}/o/{token}"

    def _disabled_now(self, request: DeliveryRequest) -> bool:
        """S-06: a message switched off in the YAML stops going out, even in running journeys."""
        if self.scenarios is None or request.scenario == BULK_SEND:
            return False  # bulk sends are not in the scenario files
        try:
            scenario = self.scenarios().get(request.scenario)
        except ScenarioError as error:
            # Broken files on this worker: keep to the version the journey pinned.
            log.warning("scenarios.unreadable", error=str(error))
            return False
        journey = next((j for j in scenario.journeys if j.id == request.journey), None) if scenario else None
        message = next((m for m in journey.messages if m.id == request.step.id), None) if journey else None
        return message is not None and not message.enabled

    async def _send(self, key: str, message: OutgoingMessage) -> StepOutcome:
        try:
            result = await self.channel.send(message)
        except TransientSendError as error:
            await self._finish(key, RETRYING, str(error))
            raise  # Temporal retries with backoff; the row is free to be claimed again
        except PermanentSendError as error:
            return await self._finish(key, DeliveryStatus.FAILED, str(error))
        except UncertainSendError as error:
            return await self._finish(key, DeliveryStatus.UNCONFIRMED, str(error))
        log.info("delivery.sent", key=key, to=message.to, provider=result.provider)
        return await self._finish(
            key, DeliveryStatus.SENT, None, provider=result.provider, message_id=result.message_id
        )

    async def _finish(
        self,
        key: str,
        status: str,
        reason: str | None,
        provider: str | None = None,
        message_id: str | None = None,
    ) -> StepOutcome:
        values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": _now()}
        if provider:
            values |= {"provider": provider, "provider_message_id": message_id}
        async with self.sessions() as session, session.begin():
            row = (
                await session.execute(
                    update(Delivery)
                    .where(Delivery.idempotency_key == key)
                    .values(**values)
                    .returning(Delivery.message, Delivery.status, Delivery.at, Delivery.reason)
                )
            ).one()
        return StepOutcome(step=row.message, status=DeliveryStatus(row.status), at=row.at, reason=row.reason)

    @activity.defn(name="skip_messages")
    async def skip(self, requests: list[SkipRequest]) -> list[StepOutcome]:
        """Record planned messages that will not be sent, with the reason."""
        keys = [r.idempotency_key for r in requests]
        async with self.sessions() as session, session.begin():
            contacts = {
                c.external_id: c
                for c in await session.scalars(
                    select(Contact).where(Contact.external_id.in_({r.contact for r in requests}))
                )
            }
            for request in requests:
                values = _ledger_values(
                    request, contacts.get(request.contact), DeliveryStatus.SKIPPED, request.reason, None
                )
                await session.execute(insert_ignoring_conflicts(session).values(**values))
                log.info("delivery.skipped", key=request.idempotency_key, reason=request.reason)
            # An earlier attempt may have recorded some: report what the ledger holds.
            rows = {
                r.idempotency_key: r
                for r in await session.scalars(select(Delivery).where(Delivery.idempotency_key.in_(keys)))
            }
            return [_outcome(rows[key]) for key in keys]

    @activity.defn(name="resend_message")
    async def resend(self, request: ResendRequest) -> StepOutcome:
        """Another attempt of a message that soft-bounced, rebuilt from the ledger and its journey."""
        async with self.sessions() as session:
            base = await self._ledger_row(session, request.delivery_key)
            run = await session.get(JourneyRun, base.workflow_id) if base else None
            event = await session.get(Event, run.trigger_event_id) if run else None
        if base is None or run is None or event is None:
            return _not_resent(request, "only journey messages are tried again")
        step = self._current_step(base.scenario, base.journey, base.message)
        if step is None:
            return _not_resent(request, "the message is no longer in the scenario")
        return await self.deliver(
            DeliveryRequest(
                idempotency_key=f"{request.delivery_key}{RESEND_MARK}{request.attempt}",
                workflow_id=base.workflow_id,
                scenario=base.scenario,
                journey=base.journey,
                version=run.scenario_version,
                contact=base.contact_external_id,
                step=step,
                trigger=TriggerEvent(
                    event_id=event.id,
                    type=event.type,
                    ref=ids.ref_of(run.workflow_id),
                    occurred_at=event.occurred_at,
                    properties=dict(event.properties or {}),
                ),
                at=request.at,
                resend=True,
            )
        )

    def _current_step(self, scenario_id: str, journey_id: str, message_id: str) -> StepSpec | None:
        if self.scenarios is None:
            return None
        scenario = self.scenarios().get(scenario_id)
        journey = next((j for j in scenario.journeys if j.id == journey_id), None) if scenario else None
        if scenario is None or journey is None:
            return None
        return next((s for s in scenario.journey_spec(journey).steps if s.id == message_id), None)

    @activity.defn(name="end_soft_bounces")
    async def end_soft_bounces(self, end: BounceEnd) -> None:
        async with self.sessions() as session, session.begin():
            row = await self._ledger_row(session, end.delivery_key)
            if row is not None:
                first = (row.reason or "soft bounce").split(" — ", 1)[0]  # idempotent under retries
                row.reason, row.updated_at = f"{first} — {end.reason}", _now()

    @activity.defn(name="end_journey")
    async def end_journey(self, end: JourneyEnd) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(JourneyRun)
                .where(JourneyRun.workflow_id == end.workflow_id)
                .values(status=end.status, end_reason=end.reason, ended_at=end.at)
            )

    @staticmethod
    async def _ledger_row(session: AsyncSession, key: str) -> Delivery | None:
        return await session.scalar(select(Delivery).where(Delivery.idempotency_key == key))


def _not_resent(request: ResendRequest, reason: str) -> StepOutcome:
    return StepOutcome(step=request.delivery_key, status=DeliveryStatus.SKIPPED, at=request.at, reason=reason)


@dataclass(frozen=True)
class Deferral:
    until: datetime
    reason: str


def insert_ignoring_conflicts(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the ledger's unique key, on either backend."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Delivery).on_conflict_do_nothing(index_elements=["idempotency_key"])


def _ledger_values(
    request: DeliveryRequest | SkipRequest,
    contact: Contact | None,
    status: str,
    reason: str | None,
    message: OutgoingMessage | str | None,
) -> dict[str, Any]:
    sending = isinstance(message, OutgoingMessage)
    now = _now()
    return {
        "idempotency_key": request.idempotency_key,
        "workflow_id": request.workflow_id,
        "scenario": request.scenario,
        "journey": request.journey,
        "message": request.step.id,
        "channel": request.step.channel.value,
        "contact_id": contact.id if contact else None,
        "contact_external_id": request.contact,
        "status": status,
        "reason": reason,
        "at": request.at,
        "recipient": message.to if isinstance(message, OutgoingMessage) else None,
        "subject": message.subject if isinstance(message, OutgoingMessage) else None,
        "variant": variant_of(request.scenario, request.journey, request.step, request.contact),
        "attempts": 1 if sending else 0,
        "created_at": now,
        "updated_at": now,
    }


def _context(request: DeliveryRequest, contact: Contact) -> dict[str, Any]:
    return {
        "contact": {
            "external_id": contact.external_id,
            "email": contact.email,
            "phone": contact.phone,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "locale": contact.locale,
            "time_zone": contact.time_zone,
            "attributes": dict(contact.attributes or {}),
        },
        "event": {
            "type": request.trigger.type,
            "occurred_at": request.trigger.occurred_at,
            "properties": dict(request.trigger.properties),
        },
        "message": {
            "id": request.step.id,
            "scenario": request.scenario,
            "journey": request.journey,
            "channel": request.step.channel.value,
        },
    }
