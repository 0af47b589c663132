"""Segment admission: whether one contact is in a journey's entry segment when its trigger comes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.tables.contact import Contact
from relance.segments.audience import Spec, audience


async def in_segment(session: AsyncSession, spec: Spec, contact_id: int, at: datetime) -> bool:
    """Whether the segment (any spec ``audience`` takes) holds the contact at ``at``."""
    found = await session.scalar(
        select(Contact.id).where(Contact.id == contact_id, Contact.id.in_(audience(spec, at)))
    )
    return found is not None
