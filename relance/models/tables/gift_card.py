"""E-gift cards (G-01, G-04 … G-06)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


class GiftCard(Base):
    __tablename__ = "gift_cards"

    key: Mapped[str] = mapped_column(String(200), primary_key=True, doc="the issuer's idempotency key")
    code: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(500), doc="where the holder spends it")
    currency: Mapped[str] = mapped_column(String(3))
    amount_cents: Mapped[int]
    balance_cents: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), doc="active, used or expired")
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    updated_at: Mapped[datetime]
