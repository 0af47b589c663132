"""Fraud guards (R-17): self-referral, referee already a customer, duplicate referee."""

from __future__ import annotations

from datetime import datetime

import phonenumbers
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.contacts.consent import PURCHASE_EVENT
from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from relance.models.tables.referral import Referral

ACTIVE = ("invited", "reconciled", "validated", "rewarded")


def normal_email(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


def normal_phone(value: str | None, region: str = "FR") -> str | None:
    if not value or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return value.strip()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


async def refusal(
    session: AsyncSession, sponsor: Contact, email: str | None, phone: str | None, customer: bool = True
) -> str | None:
    """Why this referral must be refused, or None. ``customer=False`` leaves out the check that
    the referee never bought (a purchase that brings the referral is checked by its date)."""
    if (email and email == normal_email(sponsor.email)) or (phone and phone == normal_phone(sponsor.phone)):
        return "self-referral: the referee is the sponsor"
    same = [Contact.email == email] if email else []
    same += [Contact.phone == phone] if phone else []
    if customer:
        bought = await session.scalar(
            select(Contact.external_id).where(or_(*same), Contact.last_purchase_at.is_not(None)).limit(1)
        )
        if bought is not None:
            return "the referee is already a customer"
    taken = [Referral.referee_email == email] if email else []
    taken += [Referral.referee_phone == phone] if phone else []
    earlier = await session.scalar(
        select(Referral.id).where(or_(*taken), Referral.status.in_(ACTIVE)).limit(1)
    )
    if earlier is not None:
        return f"the referee was already invited (referral {earlier})"
    return None


async def customer_before(session: AsyncSession, buyer: Contact, at: datetime) -> bool:
    """Whether the buyer had bought before ``at`` (the purchase bringing the referral is at ``at``)."""
    if buyer.last_purchase_at is not None and buyer.last_purchase_at < at:
        return True
    earlier = await session.scalar(
        select(Event.id)
        .where(Event.contact_id == buyer.id, Event.type == PURCHASE_EVENT, Event.occurred_at < at)
        .limit(1)
    )
    return earlier is not None
