"""Referrals: a sponsor invites a referee (R-05 … R-17)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sponsor_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    referee_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    referee_email: Mapped[str | None] = mapped_column(String(320), doc="normalised, for the fraud guards")
    referee_phone: Mapped[str | None] = mapped_column(String(32), doc="E.164")
    status: Mapped[str] = mapped_column(
        String(16), doc="refused, invited, reconciled, validated, rewarded, abandoned, rejected"
    )
    reason: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[str | None] = mapped_column(String(200), doc="the referee's purchase, once reconciled")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_referrals_referee_email", "referee_email"),
        Index("ix_referrals_referee_phone", "referee_phone"),
    )


class SponsorCode(Base):
    """A sponsor's own referral code: typed at checkout or carried by their shared link."""

    __tablename__ = "sponsor_codes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True, doc="upper case")
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), unique=True)
    created_at: Mapped[datetime]
