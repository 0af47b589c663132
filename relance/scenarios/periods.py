"""Calendar periods of threshold triggers: "the 3rd visit this month" starts a journey once a month.

Periods follow the contact's wall clock (a month starts at their local midnight, whatever DST
does), so they are computed at ingestion, where the contact's time zone may be read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.tables.event import Event
from relance.scenarios.model import Threshold


def calendar_period(local: datetime, per: str) -> tuple[datetime, datetime, str]:
    """The calendar day, week (from Monday), month or year around ``local``: UTC bounds and a label."""
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if per == "day":
        start, end, label = day, day + timedelta(days=1), f"{day:%Y-%m-%d}"
    elif per == "week":
        start = day - timedelta(days=day.weekday())
        end, iso = start + timedelta(days=7), start.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
    elif per == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
        label = f"{start:%Y-%m}"
    else:
        start, label = day.replace(month=1, day=1), f"{day:%Y}"
        end = start.replace(year=start.year + 1)
    # Wall-clock midnights (their UTC offset may differ across a DST change): rebuild each in its zone.
    zone = local.tzinfo
    return (
        start.replace(tzinfo=zone).astimezone(UTC),
        end.replace(tzinfo=zone).astimezone(UTC),
        label,
    )


async def threshold_ref(
    session: AsyncSession, threshold: Threshold, event: Event, zone: tzinfo
) -> str | None:
    """``<per>:<period>`` once the contact has ``count`` events of this type in the stored event's
    period (in ``zone``, the contact's), else None: the journey does not start yet."""
    start, end, label = calendar_period(event.occurred_at.astimezone(zone), threshold.per)
    count = await session.scalar(
        select(func.count(Event.id)).where(
            Event.contact_id == event.contact_id,
            Event.type == event.type,
            Event.occurred_at >= start,
            Event.occurred_at < end,
        )
    )
    return f"{threshold.per}:{label}" if (count or 0) >= threshold.count else None
