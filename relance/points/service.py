"""Loyalty points and the gift shop (G-02, G-03).

Points are a ledger (earned > 0, spent < 0) and the balance is its sum. A
reservation spends points only if the balance covers them, decided with the
contact locked, so two reservations at once cannot both spend the same points.
Every entry carries the caller's key: posting it again changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.core.errors import Refused
from relance.models.points import Balance, EarnIn, ReserveIn
from relance.models.tables.contact import Contact
from relance.models.tables.points import PointsEntry

RESERVED_EVENT = "gift_reserved"  # scenarios send the confirmation on it (G-03)


async def _contact(session: AsyncSession, external_id: str) -> Contact:
    contact = await session.scalar(
        select(Contact).where(Contact.external_id == external_id).with_for_update()
    )
    if contact is None:
        raise Refused("contact", f"no contact '{external_id}'", 404)
    return contact


async def balance_of(session: AsyncSession, contact_id: int) -> int:
    total = await session.scalar(
        select(func.sum(PointsEntry.points)).where(PointsEntry.contact_id == contact_id)
    )
    return int(total or 0)


async def _record(session: AsyncSession, contact: Contact, key: str, points: int, reason: str) -> Balance:
    earlier = await session.scalar(select(PointsEntry).where(PointsEntry.key == key))
    if earlier is not None:
        if earlier.contact_id != contact.id:
            raise Refused("key", f"key '{key}' was used for another contact", 409)
        return Balance(contact=contact.external_id, balance=await balance_of(session, contact.id),
                       entry=earlier.points, duplicate=True)  # fmt: skip
    session.add(
        PointsEntry(key=key, contact_id=contact.id, points=points, reason=reason, at=datetime.now(UTC))
    )
    await session.flush()
    return Balance(contact=contact.external_id, balance=await balance_of(session, contact.id), entry=points)


async def earn(session: AsyncSession, data: EarnIn) -> Balance:
    return await _record(session, await _contact(session, data.contact), data.key, data.points, data.reason)


async def reserve(session: AsyncSession, data: ReserveIn) -> Balance:
    contact = await _contact(session, data.contact)
    earlier = await session.scalar(select(PointsEntry.id).where(PointsEntry.key == data.key))
    if earlier is None:
        available = await balance_of(session, contact.id)
        if available < data.cost:
            raise Refused("cost", f"{data.cost} points needed, the balance is {available}", 409)
    return await _record(session, contact, data.key, -data.cost, f"gift shop: {data.gift}")
