"""When each message goes out, counted from the journey's trigger (or the date it names), in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from relance.models.journey import Anchor
from relance.scenarios.model import Journey, Trigger

DAY = timedelta(days=1)
_UNITS = ((DAY, "day"), (timedelta(hours=1), "hour"), (timedelta(minutes=1), "minute"))


@dataclass(frozen=True)
class Timing:
    """A message's time: ``delta`` after the trigger, or (``date`` set) around a date of the event."""

    delta: timedelta
    date: str | None = None  # the event property holding the date (e.g. a booking's starts_at)
    at: str | None = None  # the contact's local time that day, for whole-day date offsets

    @property
    def day(self) -> int:
        """Day number from the origin (negative before a date); messages of one day share it."""
        return self.delta // DAY

    def label(self) -> str:
        """'+3 days', '+0', or '1 day before starts_at at 18:00'."""
        if self.date is None:
            return f"+{span(self.delta)}"
        if not self.delta:
            where = f"on {self.date}"
        else:
            side = "before" if self.delta < timedelta(0) else "after"
            where = f"{span(abs(self.delta))} {side} {self.date}"
        return f"{where} at {self.at}" if self.at else where


def timings(journey: Journey) -> list[Timing]:
    """Each message's time, in order.

    A disabled message still anchors the next one: the journey waits for it and skips it at its time.
    A message after a date-timed one (``after: previous``) is timed from that date too.
    """
    date = getattr(journey.trigger, "date", None)
    found: list[Timing] = []
    for message in journey.messages:
        offset: timedelta | None = getattr(
            message, "date_offset", None
        )  # scenario files may time from a date
        if offset is not None:
            found.append(Timing(offset, date, getattr(message, "at", None)))
        elif message.after is Anchor.TRIGGER or not found:
            found.append(Timing(message.delay.total))
        else:
            previous = found[-1]
            found.append(Timing(previous.delta + message.delay.total, previous.date))
    return found


def offsets(journey: Journey) -> list[timedelta]:
    """Each message's time after the trigger, for journeys whose messages are all timed by delays."""
    return [t.delta for t in timings(journey)]


def span(delta: timedelta) -> str:
    """'3 days', '1 day 12 hours', '30 minutes', '0'."""
    parts: list[str] = []
    rest = delta
    for unit, name in _UNITS:
        count, rest = divmod(rest, unit)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    seconds = int(rest.total_seconds())
    if seconds:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts) or "0"


def offset_label(delta: timedelta) -> str:
    """'+3 days': the time after the trigger."""
    return f"+{span(delta)}"


def trigger_label(trigger: Trigger) -> str:
    """'purchase', or for a change of a contact attribute 'status change: status client → former_client'."""
    event = getattr(trigger, "event", None)
    if event is not None:
        return str(event)
    status: Any = getattr(trigger, "status", None)
    if status is None:
        return "?"
    change = f"{getattr(status, 'from_', None) or 'any'} → {getattr(status, 'to', None) or 'any'}"
    return f"status change: {getattr(status, 'attribute', '?')} {change}"


def trigger_key(trigger: Trigger) -> str:
    """What starts the journey, for grouping journeys started by the same thing."""
    return trigger_label(trigger)


def trigger_details(trigger: Trigger) -> dict[str, Any]:
    """The trigger's other settings as written (ref, threshold, segment, reentry, date…)."""
    data = trigger.model_dump(mode="json", exclude_defaults=True, by_alias=True)
    data.pop("event", None)
    data.pop("status", None)
    return data


def compact(value: Any) -> str:
    """A value as YAML's flow style would show it: {count: 10, per: month}, [a, b]."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
