"""Application tables (SQLAlchemy 2, typed). Portable across SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in UTC on both backends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import UTC

        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    email_status: Mapped[str] = mapped_column(
        String(16), default="ok", server_default="ok", doc="ok, soft_bounced or hard_bounced"
    )
    last_purchase_at: Mapped[datetime | None] = mapped_column(doc="for the 3-year rule")
    unsubscribed_at: Mapped[datetime | None] = mapped_column(doc="asked for no more marketing")
    erased_at: Mapped[datetime | None] = mapped_column(
        doc="personal data purged (GDPR erasure, see relance.erasure): no more events or updates"
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())


class Consent(Base):
    """Opt-in of one contact for one channel and purpose (marketing, transactional, legal)."""

    __tablename__ = "consents"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(32), doc="api, import, link, complaint, …")
    updated_at: Mapped[datetime]


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str | None] = mapped_column(
        String(200), unique=True, doc="client-supplied idempotency key of the event"
    )
    type: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp())
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_events_contact_type_time", "contact_id", "type", "occurred_at"),)


class JourneyRun(Base):
    """One journey instance; mirrors the Temporal workflow for SQL-side routing and reports."""

    __tablename__ = "journeys"

    workflow_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    scenario: Mapped[str] = mapped_column(String(64))
    journey: Mapped[str] = mapped_column(String(64))
    scenario_version: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    trigger_event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_journeys_contact_status", "contact_id", "status"),)


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


class ContactList(Base):
    """A named set of contacts (C-05). Archived, never deleted; its members come back with it."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    salesperson_name: Mapped[str | None] = mapped_column(String(200), doc="signs messages to the list (D-10)")
    salesperson_email: Mapped[str | None] = mapped_column(String(320))
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ListMember(Base):
    __tablename__ = "list_members"

    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True, index=True)
    added_at: Mapped[datetime]
