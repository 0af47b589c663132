"""Contacts and their consents per channel and purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


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
        doc="personal data purged (GDPR erasure, see relance.contacts.erasure): no more events or updates"
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
