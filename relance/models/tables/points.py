"""Loyalty points (G-02): a ledger of earned and spent points; the balance is its sum."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


class PointsEntry(Base):
    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, doc="the caller's idempotency key")
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    points: Mapped[int] = mapped_column(doc="earned (> 0) or spent (< 0)")
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
