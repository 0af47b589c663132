"""The delivery activities of one message: ``deliver_message`` and ``skip_messages``.

Journeys send each step through ``deliver_message``; referrals, gift cards and
soft-bounce retries send through it too, in the same shape. The activity turns
the request into the send policy's neutral :class:`~relance.delivery.message.Message`
and goes through ``relance/delivery/``: the policy decides, the renderer builds
the message, the ledger claims its row before the provider is called (D-07), and
the provider's answer is recorded. If the worker dies between the send and the
record, the next attempt finds the claim and marks the row "unconfirmed" instead
of sending again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from relance.channels.base import ChannelProvider, OutgoingMessage
from relance.contacts.consent import granted_consents
from relance.core.tokens import Signer
from relance.delivery import ledger, pressure
from relance.delivery.ledger import BULK_SEND, Ready
from relance.delivery.message import Message, Occasion
from relance.delivery.policy import Go, SendPolicy
from relance.delivery.pressure import PressurePolicy, Verdict
from relance.delivery.render import Renderer
from relance.delivery.send import send
from relance.lists import service as lists
from relance.models.delivery import ProgramMessage
from relance.models.journey import DeliveryRequest, DeliveryStatus, Sender, SkipRequest, StepOutcome, StepSpec
from relance.models.list import Salesperson
from relance.models.tables.contact import Contact
from relance.scenarios.loader import ScenarioError, ScenarioSet
from relance.templates.engine import TemplateStore

log = structlog.get_logger("relance.delivery")


# The fields a Message shares, by name, with a journey step and with the activity's request.
STEP_FIELDS = {
    "channel",
    "template",
    "purpose",
    "priority",
    "on_pressure",
    "sender",
    "sms_window",
    "holdout_percent",
}
REQUEST_FIELDS = {"workflow_id", "scenario", "journey", "contact", "at", "deferrals", "resend", "arbitrate"}


def step_message(step: StepSpec, *, key: str, occasion: Occasion | None, **request: Any) -> Message:
    """The policy's description of a step's message; ``request``: the Message's other fields."""
    return Message(
        key=key,
        id=step.id,
        occasion=occasion,
        variants=tuple(step.variants),
        **step.model_dump(include=STEP_FIELDS),
        **request,
    )


def message_of(request: DeliveryRequest | SkipRequest) -> Message:
    """A journey step's request (referrals and gift cards send in the same shape) as the policy's Message."""
    trigger = request.trigger if isinstance(request, DeliveryRequest) else None
    return step_message(
        request.step,
        key=request.idempotency_key,
        occasion=Occasion(trigger.type, trigger.occurred_at, trigger.properties) if trigger else None,
        **request.model_dump(include=REQUEST_FIELDS),
    )


# The fields a Message shares, by name, with a program's message.
PROGRAM_FIELDS = {"workflow_id", "scenario", "contact", "channel", "template", "purpose", "at"}


def program_message(request: ProgramMessage) -> Message:
    """A referral's, thank-you's or gift card's message as the policy's Message: no journey step behind it."""
    return Message(
        key=request.idempotency_key,
        journey=request.subject,
        id=request.message,
        occasion=Occasion(request.scenario, request.occurred_at, request.properties),
        **request.model_dump(include=PROGRAM_FIELDS),
    )


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
    # Built from the settings above; the bulk path uses them too.
    policy: SendPolicy = field(init=False)
    renderer: Renderer = field(init=False)

    def __post_init__(self) -> None:
        self.policy = SendPolicy(self.default_time_zone, self.pressure_policy)
        self.renderer = Renderer(self.templates, self.sender, self.signer, self.public_url, self.tracking)

    @activity.defn(name="deliver_message")
    async def deliver(self, request: DeliveryRequest) -> StepOutcome:
        return await self.deliver_one(message_of(request))

    @activity.defn(name="deliver_program_message")
    async def deliver_program(self, request: ProgramMessage) -> StepOutcome:
        return await self.deliver_one(program_message(request))

    async def deliver_one(self, message: Message) -> StepOutcome:
        """Decide, claim, send and record one message; the ledger's outcome when it does not go."""
        capped = self.policy.capped(message)
        verdict: Verdict | None = None
        decided: StepOutcome | None = None
        async with self.sessions() as session, session.begin():
            if capped:
                contact = await pressure.lock_contact(session, message.contact)
            else:
                contact = await session.scalar(select(Contact).where(Contact.external_id == message.contact))
            ready = await self._prepare(session, message, contact)
            arbitrating = capped and isinstance(ready, OutgoingMessage) and contact is not None
            if arbitrating:
                assert contact is not None
                verdict = await pressure.register(
                    session,
                    self.pressure_policy,
                    key=message.claim_key,
                    contact=contact,
                    workflow_id=message.workflow_id,
                    zone=self.policy.zone(contact),
                    at=message.at,
                    priority=message.priority,
                    wait_for_rivals=message.arbitrate,
                )
            if verdict is not None or not arbitrating:
                decided = await ledger.claim(
                    session, message, contact, self._weigh(message, ready, verdict, contact)
                )
        if arbitrating and verdict is None:
            # Another journey of this contact may have a message due now: let it register.
            await asyncio.sleep(self.pressure_policy.arbitration_seconds)
            async with self.sessions() as session, session.begin():
                contact = await pressure.lock_contact(session, message.contact)
                verdict = await pressure.decide(session, self.pressure_policy, key=message.claim_key)
                decided = await ledger.claim(
                    session, message, contact, self._weigh(message, ready, verdict, contact)
                )
        if decided is not None:
            if decided.status in (DeliveryStatus.SKIPPED, DeliveryStatus.DEFERRED):
                # Operators (and the dev console) see why a message did not go, not only the ledger.
                log.info(f"delivery.{decided.status.value}", key=message.key, reason=decided.reason,
                         until=decided.until.isoformat() if decided.until else None)  # fmt: skip
            return decided
        assert isinstance(ready, OutgoingMessage)
        return await self._send(message, ready)

    async def _prepare(self, session: AsyncSession, message: Message, contact: Contact | None) -> Ready:
        granted = await granted_consents(session, contact.id) if contact else set()
        salesperson = (
            await lists.salesperson_of(session, contact.id)
            if contact and message.sender is Sender.SALESPERSON
            else None
        )
        return self.prepare(message, contact, granted, salesperson)

    def prepare(
        self,
        message: Message,
        contact: Contact | None,
        granted: set[tuple[str, str]],
        salesperson: Salesperson | None = None,
    ) -> Ready:
        """The message to send, the reason not to send it, or when to try again (before pressure)."""
        decision = self.policy.decide(message, contact, granted, disabled=self._disabled_now(message))
        if not isinstance(decision, Go):
            return decision
        assert contact is not None  # the policy lets no message go to a missing contact
        return self.renderer.render(message, contact, decision, salesperson)

    def _weigh(
        self, message: Message, ready: Ready, verdict: Verdict | None, contact: Contact | None
    ) -> Ready:
        """The message, or what commercial pressure made of it."""
        lost = self.policy.after_pressure(message, verdict, contact) if verdict is not None else None
        return lost or ready

    def _disabled_now(self, message: Message) -> bool:
        """S-06: a message switched off in the YAML stops going out, even in running journeys."""
        if self.scenarios is None or message.scenario == BULK_SEND:
            return False  # bulk sends are not in the scenario files
        try:
            scenario = self.scenarios().get(message.scenario)
        except ScenarioError as error:
            # Broken files on this worker: keep to the version the journey pinned.
            log.warning("scenarios.unreadable", error=str(error))
            return False
        journey = next((j for j in scenario.journeys if j.id == message.journey), None) if scenario else None
        found = next((m for m in journey.messages if m.id == message.id), None) if journey else None
        return found is not None and not found.enabled

    async def _send(self, message: Message, outgoing: OutgoingMessage) -> StepOutcome:
        attempt = await send(self.channel, outgoing)
        async with self.sessions() as session, session.begin():
            done = await ledger.finish(session, message.key, attempt)
        if attempt.refused_for_now is not None:
            raise attempt.refused_for_now  # Temporal retries with backoff; the row may be claimed again
        if attempt.status == DeliveryStatus.SENT:
            log.info("delivery.sent", key=message.key, to=outgoing.to, provider=attempt.provider)
        return done

    @activity.defn(name="skip_messages")
    async def skip(self, requests: list[SkipRequest]) -> list[StepOutcome]:
        """Record planned messages that will not be sent, with the reason."""
        async with self.sessions() as session, session.begin():
            contacts = {
                c.external_id: c
                for c in await session.scalars(
                    select(Contact).where(Contact.external_id.in_({r.contact for r in requests}))
                )
            }
            for request in requests:
                row = ledger.values(
                    message_of(request), contacts.get(request.contact), DeliveryStatus.SKIPPED, request.reason
                )
                await session.execute(ledger.insert_ignoring_conflicts(session).values(**row))
                log.info("delivery.skipped", key=request.idempotency_key, reason=request.reason)
            # An earlier attempt may have recorded some: report what the ledger holds.
            rows = await ledger.rows(session, [r.idempotency_key for r in requests])
            return [ledger.recorded(rows[r.idempotency_key]) for r in requests]
