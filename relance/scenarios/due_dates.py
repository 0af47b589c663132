"""When messages timed from a date are due (S-03 date-relative triggers, M-05 booking reminders).

Computed at ingestion, where the contact's time zone may be read (workflows may
not): whole days count on the contact's calendar ("1 day before the 25th, at
18:00" is the 24th at 18:00 in their zone, whatever DST does); whole hours
before the date follow the club software marketers know (seed 002): the
message goes on the hour, so "1 hour" before a 16:30 or a 16:50 session is
16:00 (write 2 hours to be at least an hour ahead); other offsets are exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from relance.scenarios.model import Journey

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


class DateError(ValueError):
    """The trigger's date property is missing or unreadable; the message says what to send."""


def read_date(value: object, zone: tzinfo) -> datetime:
    """An ISO datetime (with an offset, or local to the contact) or a date (local midnight)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), tzinfo=zone)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
    raise DateError(f"{value!r} is not a date: send ISO 8601, e.g. 2026-11-25T16:30:00+01:00 or 2026-11-25")


def due_times(journey: Journey, properties: dict[str, object], zone: tzinfo) -> dict[str, datetime]:
    """Message id → due time (UTC) for the journey's messages timed from its trigger's date."""
    name = journey.trigger.date
    dated = [m for m in journey.messages if m.date_offset is not None]
    if name is None or not dated:
        return {}
    if properties.get(name) in (None, ""):
        raise DateError(f"missing: journey '{journey.id}' times messages from it")
    when = read_date(properties[name], zone)
    local = when.astimezone(zone)
    due: dict[str, datetime] = {}
    for message in dated:
        offset = message.date_offset
        assert offset is not None
        if offset % DAY == timedelta(0):
            clock = time.fromisoformat(message.at) if message.at else local.time().replace(tzinfo=None)
            at = datetime.combine(local.date() + timedelta(days=offset // DAY), clock, tzinfo=zone)
        elif offset < timedelta(0) and offset % HOUR == timedelta(0):
            at = (when + offset + HOUR).astimezone(zone).replace(minute=0, second=0, microsecond=0)
        else:
            at = when + offset
        due[message.id] = at.astimezone(UTC)
    return due
