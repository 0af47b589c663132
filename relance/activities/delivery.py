"""The one delivery path: eligibility, render, ledger, send, record.

Every planned message gets a ledger row keyed by (workflow, step, channel).
The row is claimed ("sending") before the provider is called, so a retried or
re-run activity finds it and never sends twice (D-07). If the worker dies
between the send and the record, the next attempt finds the claim and marks
the row "unconfirmed" instead of sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from relance.channels import (
    ChannelProvider,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    UncertainSendError,
)
from relance.models.journey_io import (
    Channel,
    DeliveryRequest,
    DeliveryStatus,
    JourneyEnd,
    SkipRequest,
    StepOutcome,
)
from relance.models.tables import Contact, Delivery, JourneyRun
from relance.templates import TemplateError, TemplateStore

log = structlog.get_logger("relance.delivery")

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

    @activity.defn(name="deliver_message")
    async def deliver(self, request: DeliveryRequest) -> StepOutcome:
        async with self.sessions() as session, session.begin():
            row = await self._ledger_row(session, request.idempotency_key)
            if row is not None and row.status in _FINAL:
                return _outcome(row)  # already decided by an earlier attempt
            if row is not None and row.status == CLAIMED:
                # An earlier attempt called the provider and never came back.
                row.status = DeliveryStatus.UNCONFIRMED
                row.reason = "the worker stopped during the send; not resent to avoid a duplicate"
                row.updated_at = _now()
                log.warning("delivery.unconfirmed", key=request.idempotency_key)
                return _outcome(row)
            contact = await session.scalar(select(Contact).where(Contact.external_id == request.contact))
            prepared = self._prepare(request, contact)
            if isinstance(prepared, str):
                row = await self._record(session, request, row, contact, DeliveryStatus.SKIPPED, prepared)
                return _outcome(row)
            await self._record(session, request, row, contact, CLAIMED, None, prepared)
        return await self._send(request.idempotency_key, prepared)

    def _prepare(self, request: DeliveryRequest, contact: Contact | None) -> OutgoingMessage | str:
        """The message to send, or the reason not to send it."""
        step = request.step
        if contact is None:
            return "contact not found (erased or never imported)"
        to = contact.email if step.channel is Channel.EMAIL else contact.phone
        if not to:
            return f"contact has no {'email address' if step.channel is Channel.EMAIL else 'phone number'}"
        try:
            rendered = self.templates.render(step.template, step.channel, _context(request, contact))
        except TemplateError as error:
            return f"template error: {error}"
        return OutgoingMessage(
            idempotency_key=request.idempotency_key,
            channel=step.channel,
            to=to,
            sender=self.sender,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
        )

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
            await session.execute(update(Delivery).where(Delivery.idempotency_key == key).values(**values))
            row = await self._ledger_row(session, key)
            assert row is not None
            return _outcome(row)

    @activity.defn(name="skip_messages")
    async def skip(self, requests: list[SkipRequest]) -> list[StepOutcome]:
        """Record planned messages that will not be sent, with the reason."""
        outcomes: list[StepOutcome] = []
        async with self.sessions() as session, session.begin():
            external_ids = {r.contact for r in requests}
            contacts = {
                c.external_id: c
                for c in await session.scalars(select(Contact).where(Contact.external_id.in_(external_ids)))
            }
            for request in requests:
                row = await self._ledger_row(session, request.idempotency_key)
                if row is None:
                    row = await self._record(
                        session,
                        request,
                        None,
                        contacts.get(request.contact),
                        DeliveryStatus.SKIPPED,
                        request.reason,
                    )
                outcomes.append(_outcome(row))
        for request in requests:
            log.info("delivery.skipped", key=request.idempotency_key, reason=request.reason)
        return outcomes

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

    @staticmethod
    async def _record(
        session: AsyncSession,
        request: DeliveryRequest | SkipRequest,
        row: Delivery | None,
        contact: Contact | None,
        status: str,
        reason: str | None,
        message: OutgoingMessage | None = None,
    ) -> Delivery:
        """Insert or update the ledger row; a concurrent insert of the same key wins."""
        if row is None:
            row = Delivery(
                idempotency_key=request.idempotency_key,
                workflow_id=request.workflow_id,
                scenario=request.scenario,
                journey=request.journey,
                message=request.step.id,
                channel=request.step.channel,
                contact_id=contact.id if contact else None,
                contact_external_id=request.contact,
                attempts=0,
                at=request.at,
                status=status,
                reason=reason,
            )
            try:
                async with session.begin_nested():
                    session.add(row)
                    await session.flush()
            except IntegrityError as error:
                # Another attempt inserted the same key between our read and write:
                # let Temporal retry, the next attempt reads that row.
                raise ApplicationError(
                    f"ledger row {request.idempotency_key} written concurrently"
                ) from error
        row.status = status
        row.reason = reason
        row.updated_at = _now()
        if message is not None:
            row.recipient = message.to
            row.subject = message.subject
            row.attempts += 1
        await session.flush()
        return row


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
