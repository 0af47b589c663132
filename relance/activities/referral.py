"""Referral bookkeeping: the status row operators and reports read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from relance.contacts.consent import PURCHASE_EVENT
from relance.models.referral import CardBalance, CardQuery, CodeUseQuery, ReferralStatus
from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from relance.models.tables.gift_card import GiftCard
from relance.models.tables.referral import Referral


@dataclass
class ReferralActivities:
    sessions: async_sessionmaker[AsyncSession]

    @activity.defn(name="record_referral_status")
    async def record_status(self, status: ReferralStatus) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(Referral, status.referral_id)
            if row is not None:
                row.status, row.reason, row.updated_at = status.status, status.reason, datetime.now(UTC)
                row.order_id = status.order_id or row.order_id

    @activity.defn(name="promo_code_used")
    async def promo_code_used(self, query: CodeUseQuery) -> bool:
        """Whether a purchase of the contact since ``since`` carried the code (``properties.promo_code``)."""
        async with self.sessions() as session:
            properties = await session.scalars(
                select(Event.properties)
                .join(Contact, Contact.id == Event.contact_id)
                .where(
                    Contact.external_id == query.contact,
                    Event.type == PURCHASE_EVENT,
                    Event.occurred_at >= query.since,
                )
            )
            wanted = query.code.strip().upper()
            return any(str(p.get("promo_code", "")).strip().upper() == wanted for p in properties if p)

    @activity.defn(name="gift_card_balance")
    async def card_balance(self, query: CardQuery) -> CardBalance:
        async with self.sessions() as session:
            card = await session.get(GiftCard, query.key)
        if card is None:
            return CardBalance(found=False)
        return CardBalance(
            found=True, amount_cents=card.amount_cents, balance_cents=card.balance_cents, status=card.status
        )
