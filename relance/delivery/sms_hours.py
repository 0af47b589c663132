"""When an SMS may go out: local hours in the contact's time zone (D-05).

Time-zone arithmetic depends on tzdata, so it lives here, called from the
delivery activity, never from workflow code.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_hour(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def next_opening(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """None when ``at`` falls inside [start, end) local time, else the next opening, in UTC."""
    local = at.astimezone(zone)
    if start <= local.time().replace(tzinfo=None) < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    # A start inside a DST gap (02:30 on a spring-forward night) resolves to the first
    # instant after it: zoneinfo reads it with the offset in force before the change.
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
