"""Gift-card activities: issue through the provider, record the balance, expire. Idempotent by key."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from relance.gift_cards.provider import GiftCardProvider
from relance.models.gift_card import CardRecord, ExpireRequest, IssueRequest, UseRequest
from relance.models.tables.contact import Contact
from relance.models.tables.gift_card import GiftCard


def add_months(at: datetime, months: int) -> datetime:
    """Same day and time ``months`` later (the 29th of February becomes the 28th). UTC, no tzdata."""
    month = at.month - 1 + months
    year, month = at.year + month // 12, month % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def _record(card: GiftCard) -> CardRecord:
    return CardRecord(
        key=card.key,
        code=card.code,
        url=card.url,
        currency=card.currency,
        amount_cents=card.amount_cents,
        balance_cents=card.balance_cents,
        status=card.status,
        issued_at=card.issued_at,
        expires_at=card.expires_at,
    )


@dataclass
class GiftCardActivities:
    sessions: async_sessionmaker[AsyncSession]
    provider: GiftCardProvider

    @activity.defn(name="issue_gift_card")
    async def issue(self, request: IssueRequest) -> CardRecord:
        async with self.sessions() as session, session.begin():
            existing = await session.get(GiftCard, request.key)
            if existing is not None:
                return _record(existing)  # issued by an earlier attempt
            contact = await session.scalar(select(Contact).where(Contact.external_id == request.contact))
            if contact is None:
                raise ApplicationError(f"no contact '{request.contact}'", non_retryable=True)
        issued = await self.provider.issue(request.key, request.amount_cents, request.currency)
        async with self.sessions() as session, session.begin():
            card = await session.get(GiftCard, request.key)
            if card is None:
                card = GiftCard(
                    key=request.key,
                    code=issued.code,
                    contact_id=contact.id,
                    provider=self.provider.name,
                    provider_ref=issued.provider_ref,
                    url=issued.url,
                    currency=request.currency,
                    amount_cents=request.amount_cents,
                    balance_cents=request.amount_cents,
                    status="active",
                    issued_at=request.at,
                    expires_at=add_months(request.at, request.validity_months),
                    updated_at=datetime.now(UTC),
                )
                session.add(card)
            return _record(card)

    @activity.defn(name="record_gift_card_balance")
    async def record_balance(self, request: UseRequest) -> CardRecord:
        """Set (not subtract) the balance the workflow computed: a retry changes nothing."""
        async with self.sessions() as session, session.begin():
            card = await session.get(GiftCard, request.key)
            assert card is not None
            card.balance_cents = request.balance_cents
            card.status = "used" if request.balance_cents == 0 else "active"
            card.updated_at = datetime.now(UTC)
            return _record(card)

    @activity.defn(name="expire_gift_card")
    async def expire(self, request: ExpireRequest) -> CardRecord:
        async with self.sessions() as session, session.begin():
            card = await session.get(GiftCard, request.key)
            assert card is not None
            if card.status == "active":
                card.status, card.updated_at = "expired", datetime.now(UTC)
            return _record(card)
