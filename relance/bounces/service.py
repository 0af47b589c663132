"""What mailbox providers tell us after a send: bounces and complaints (D-08).

- hard bounce: the address is invalid; the contact's email is marked
  ``hard_bounced`` and nothing more is sent to it (until the email changes, C-08);
- soft bounce: a temporary failure; the message is tried again, up to 3 attempts
  within 24 hours of the first send (SoftBounceWorkflow), then left alone;
- complaint ("this is spam"): the contact is unsubscribed from marketing.

Each is recorded against the delivery in ``delivery_events``, once per SNS message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relance.contacts.consent import unsubscribe
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent

log = structlog.get_logger("relance.bounces")

RESEND_MARK = "#resend"


class FeedbackError(ValueError):
    """The notification is not an SES bounce, complaint or delivery report."""


class UnknownMessage(LookupError):
    """No delivery of ours has this provider message id."""


class Kind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class Feedback:
    kind: Kind
    message_id: str  # the provider's id of the message we sent
    recipients: tuple[str, ...]
    at: datetime
    detail: str


@dataclass(frozen=True)
class Recorded:
    kind: Kind
    delivery_key: str
    first_sent_at: datetime
    duplicate: bool


def base_key(delivery_key: str) -> str:
    """The planned message a resend belongs to."""
    return delivery_key.split(RESEND_MARK, 1)[0]


def parse_ses(text: str) -> Feedback:
    """An SES notification (identity notifications or configuration-set events)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedbackError(f"the SNS Message is not JSON: {error.msg} (character {error.pos})") from error
    if not isinstance(data, dict):
        raise FeedbackError("the SNS Message is not a JSON object")
    kind = data.get("notificationType") or data.get("eventType")
    mail = data.get("mail")
    if not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str) or not mail["messageId"]:
        raise FeedbackError("mail.messageId is missing: not an SES notification")
    if kind == "Bounce":
        bounce = _section(data, "bounce")
        hard = bounce.get("bounceType") == "Permanent"  # Transient and Undetermined: try again
        recipients = _addresses(bounce, "bouncedRecipients")
        detail = f"{bounce.get('bounceType', '?')}/{bounce.get('bounceSubType', '?')}"
        diagnostics = [
            r.get("diagnosticCode") for r in bounce.get("bouncedRecipients", []) if isinstance(r, dict)
        ]
        if any(diagnostics):
            detail += f": {next(d for d in diagnostics if d)}"
        return Feedback(
            Kind.HARD_BOUNCE if hard else Kind.SOFT_BOUNCE,
            mail["messageId"],
            recipients,
            _timestamp(bounce),
            detail,
        )
    if kind == "Complaint":
        complaint = _section(data, "complaint")
        recipients = _addresses(complaint, "complainedRecipients")
        detail = str(complaint.get("complaintFeedbackType") or "complaint")
        return Feedback(Kind.COMPLAINT, mail["messageId"], recipients, _timestamp(complaint), detail)
    if kind == "Delivery":
        delivery = data.get("delivery")
        section = delivery if isinstance(delivery, dict) else {}
        return Feedback(Kind.DELIVERED, mail["messageId"], (), _timestamp(section), "delivered")
    raise FeedbackError(f"notification type {kind!r} is not handled (Bounce, Complaint, Delivery)")


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name)
    if not isinstance(section, dict):
        raise FeedbackError(f"'{name}' is missing from the {name} notification")
    return section


def _addresses(section: dict[str, Any], field: str) -> tuple[str, ...]:
    entries = section.get(field)
    if not isinstance(entries, list) or not entries:
        raise FeedbackError(f"'{field}' is missing or empty")
    addresses: list[str] = []
    for entry in entries:
        if isinstance(entry, dict):
            address = entry.get("emailAddress")
            if not isinstance(address, str) or not address:
                raise FeedbackError(f"'{field}' has an entry without emailAddress")
            addresses.append(address)
    return tuple(addresses)


def _timestamp(section: dict[str, Any]) -> datetime:
    value = section.get("timestamp")
    if not isinstance(value, str):
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise FeedbackError(f"timestamp {value!r} is not an ISO 8601 date") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def record(
    sessions: async_sessionmaker[AsyncSession], feedback: Feedback, notification_id: str
) -> Recorded:
    """Apply one notification; a repeated SNS message (same id) changes nothing."""
    async with sessions() as session, session.begin():
        delivery = await session.scalar(
            select(Delivery).where(Delivery.provider_message_id == feedback.message_id)
        )
        if delivery is None:
            raise UnknownMessage(f"no message of ours has the provider id {feedback.message_id!r}")
        base = await session.scalar(
            select(Delivery).where(Delivery.idempotency_key == base_key(delivery.idempotency_key))
        )
        first_sent_at = (base or delivery).at  # the journey clock, which the workflow counts on
        inserted = await session.scalar(
            _insert_event(session)
            .values(
                delivery_key=delivery.idempotency_key,
                kind=feedback.kind.value,
                url=None,
                detail=feedback.detail[:1000],
                source_id=notification_id,
                at=feedback.at,
            )
            .on_conflict_do_nothing(index_elements=["source_id"])
            .returning(DeliveryEvent.id)
        )
        result = Recorded(feedback.kind, delivery.idempotency_key, first_sent_at, duplicate=inserted is None)
        if result.duplicate or feedback.kind is Kind.DELIVERED:
            return result
        contact = await session.get(Contact, delivery.contact_id) if delivery.contact_id else None
        now = datetime.now(UTC)
        if feedback.kind is Kind.HARD_BOUNCE:
            delivery.status, delivery.reason = "bounced", f"hard bounce ({feedback.detail})"
            if contact is not None and _same_address(contact.email, feedback.recipients):
                # Only the address that bounced: a contact who changed it meanwhile is fine.
                contact.email_status, contact.updated_at = "hard_bounced", now
        elif feedback.kind is Kind.SOFT_BOUNCE:
            delivery.status, delivery.reason = "bounced", f"soft bounce ({feedback.detail})"
            if contact is not None and contact.email_status == "ok":
                contact.email_status = "soft_bounced"
        elif feedback.kind is Kind.COMPLAINT and contact is not None:
            await unsubscribe(session, contact, feedback.at, source="complaint")
        delivery.updated_at = now
        log.info("feedback.recorded", kind=feedback.kind.value, key=delivery.idempotency_key)
        return result


def _same_address(email: str | None, recipients: tuple[str, ...]) -> bool:
    return email is not None and email.strip().lower() in {r.strip().lower() for r in recipients}


def _insert_event(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DeliveryEvent)
