"""The delivery ledger: one row per message decision, what providers said after, pressure claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


class Delivery(Base):
    """The delivery ledger: one row per planned message, unique per journey step and channel."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(500), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(400), index=True)
    scenario: Mapped[str] = mapped_column(String(64))
    journey: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    contact_external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(doc="journey time of the decision (workflow clock)")
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    variant: Mapped[str | None] = mapped_column(
        String(64), doc="A/B group of the contact for this message: a variant id or 'holdout' (A-04)"
    )
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(400))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())


class DeliveryEvent(Base):
    """What happened to a sent message afterwards: opened, clicked, bounced, complained."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_key: Mapped[str] = mapped_column(String(500), index=True, doc="the ledger's idempotency key")
    kind: Mapped[str] = mapped_column(
        String(16), doc="open, click, hard_bounce, soft_bounce, complaint or delivered"
    )
    url: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text, doc="the provider's words (bounce type, diagnostic)")
    source_id: Mapped[str | None] = mapped_column(
        String(200), unique=True, doc="the notification's own id: a repeated one is ignored"
    )
    at: Mapped[datetime]


class PressureClaim(Base):
    """A marketing message asking for one of the contact's daily slots (commercial pressure, D-06).

    ``candidate`` while its arbitration runs, then ``taken`` (counts towards the day's cap)
    or ``yielded`` (deferred or dropped). Journeys and bulk sends share these rows.
    """

    __tablename__ = "pressure_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(520), unique=True, doc="delivery key and attempt")
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    day: Mapped[str] = mapped_column(String(10), doc="the contact's local calendar day, YYYY-MM-DD")
    rank: Mapped[int] = mapped_column(doc="0 very_important, 1 important, 2 low")
    at: Mapped[datetime] = mapped_column(doc="journey time the message was due")
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, doc="why it yielded")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_pressure_claims_contact_day", "contact_id", "day", "state"),)
