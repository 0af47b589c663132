"""Promo codes given as rewards (R-12): loaded into pools, or generated, one per reward key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base

AVAILABLE, ASSIGNED = "available", "assigned"


class PromoCode(Base):
    __tablename__ = "promo_codes"
    __table_args__ = (
        UniqueConstraint("pool", "code", name="uq_promo_codes_pool_code"),
        CheckConstraint("status IN ('available', 'assigned')", name="ck_promo_codes_status"),
        # The assignment takes the lowest id among a pool's available codes: a partial index keeps
        # that lookup small however many codes have already been given.
        Index(
            "ix_promo_codes_available",
            "pool",
            "id",
            postgresql_where=text("status = 'available'"),
            sqlite_where=text("status = 'available'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool: Mapped[str] = mapped_column(String(100), doc="a loaded pool, or generated:<prefix>")
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), doc="available or assigned")
    assigned_key: Mapped[str | None] = mapped_column(
        String(200), unique=True, doc="the reward's idempotency key, e.g. reward-<referral id>"
    )
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
