"""Who may receive what: consents, unsubscribes, bounces and the 3-year rule.

Checked at every send (J-07), not only when a journey starts: a contact who
unsubscribed yesterday gets nothing today, whatever journey they are in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.journey import Channel, Purpose
from relance.models.tables.contact import Consent, Contact

# Event types with a meaning of their own for every contact, whatever the scenarios.
PURCHASE_EVENT = "purchase"  # moves the last purchase date (3-year rule)
UNSUBSCRIBE_EVENT = "unsubscribed"  # no more marketing, on every channel

# Marketing stops three years after the last purchase (seed 000; CNIL guidance).
THREE_YEARS = timedelta(days=3 * 365 + 1)


def ineligibility(
    contact: Contact, granted: set[tuple[str, str]], channel: Channel, purpose: Purpose, at: datetime
) -> str | None:
    """Why this contact may not get this message now, or None when they may."""
    if channel is Channel.EMAIL and contact.email_status == "hard_bounced":
        return "email address hard-bounced"
    if purpose is not Purpose.MARKETING:
        return None  # transactional and legal messages need no marketing consent
    if contact.unsubscribed_at is not None and contact.unsubscribed_at <= at:
        return "contact unsubscribed from marketing"
    if (channel.value, Purpose.MARKETING.value) not in granted:
        return f"no marketing opt-in for {channel.value}"
    if contact.last_purchase_at is not None and at - contact.last_purchase_at > THREE_YEARS:
        return "last purchase over 3 years ago (3-year rule)"
    return None


async def granted_consents(session: AsyncSession, contact_id: int) -> set[tuple[str, str]]:
    """The (channel, purpose) pairs the contact consented to."""
    return (await granted_consents_of(session, [contact_id]))[contact_id]


async def granted_consents_of(
    session: AsyncSession, contact_ids: Collection[int]
) -> defaultdict[int, set[tuple[str, str]]]:
    """The same for many contacts in one statement (bulk sends); empty for those without any."""
    granted: defaultdict[int, set[tuple[str, str]]] = defaultdict(set)
    for contact_id, channel, purpose in await session.execute(
        select(Consent.contact_id, Consent.channel, Consent.purpose).where(
            Consent.contact_id.in_(list(contact_ids)), Consent.granted.is_(True)
        )
    ):
        granted[contact_id].add((channel, purpose))
    return granted


async def set_consents(
    session: AsyncSession,
    contact_id: int,
    consents: dict[str, dict[str, bool]],
    source: str,
    at: datetime,
) -> None:
    """Record opt-ins and opt-outs; the latest statement for a channel and purpose wins."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for channel, purposes in consents.items():
        for purpose, granted in purposes.items():
            values = {
                "contact_id": contact_id,
                "channel": str(channel),
                "purpose": str(purpose),
                "granted": granted,
                "source": source,
                "updated_at": at,
            }
            stmt = insert(Consent).values(**values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["contact_id", "channel", "purpose"],
                    set_={"granted": granted, "source": source, "updated_at": at},
                )
            )


async def unsubscribe(session: AsyncSession, contact: Contact, at: datetime, source: str) -> None:
    """No more marketing on any channel; transactional and legal messages still go."""
    if contact.unsubscribed_at is None or contact.unsubscribed_at > at:
        contact.unsubscribed_at = at
    await set_consents(
        session, contact.id, {c.value: {Purpose.MARKETING.value: False} for c in Channel}, source, at
    )
