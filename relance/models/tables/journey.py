"""Journeys started: one row per journey id, its status and scenario version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


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
