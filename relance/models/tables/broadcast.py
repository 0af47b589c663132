"""Bulk sends (B-01 … B-06): the send itself and its audience snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


class Broadcast(Base):
    __tablename__ = "broadcasts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    audience: Mapped[dict[str, Any]] = mapped_column(doc="{'list': name} or a segment")
    channels: Mapped[str] = mapped_column(String(16), doc="email, sms, both or preferred")
    template: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), doc="scheduled, sending, completed, cancelled")
    send_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    report: Mapped[dict[str, Any] | None] = mapped_column(doc="processed, sent, suppressed by reason")


class BroadcastRecipient(Base):
    """One message of a bulk send: the audience snapshot, one row per person and channel."""

    __tablename__ = "broadcast_recipients"

    broadcast_id: Mapped[str] = mapped_column(ForeignKey("broadcasts.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, doc="order of processing, from 1")
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None] = mapped_column(doc="deferred (SMS outside the contact's hours) until")
    deferrals: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_broadcast_recipients_status", "broadcast_id", "status", "seq"),)
