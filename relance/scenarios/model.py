"""Scenario files as marketers write them (YAML), validated by pydantic.

A scenario groups journeys; a journey is a trigger plus an ordered list of
messages, each waiting a delay relative to the trigger or the previous message.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relance.models.journey import (
    Anchor,
    Channel,
    JourneySpec,
    OnPressure,
    Priority,
    Purpose,
    Sender,
    StepSpec,
    VariantSpec,
)
from relance.segments.audience import resolve
from relance.segments.load import SegmentError

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
EventType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]*$", max_length=64)]

_DELAY_RE = re.compile(
    r"^\s*(?P<n>\d+)\s*(?P<unit>s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s*$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Delay(BaseModel):
    """A delay written either as a mapping ``{days: 3, hours: 2}`` or a string ``"3 days"``."""

    model_config = ConfigDict(extra="forbid")

    weeks: int = Field(0, ge=0)
    days: int = Field(0, ge=0)
    hours: int = Field(0, ge=0)
    minutes: int = Field(0, ge=0)
    seconds: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"write a unit: '{value} days' or '{{days: {value}}}'")
        if isinstance(value, str):
            match = _DELAY_RE.match(value.lower())
            if not match:
                raise ValueError(f"'{value}' is not a delay: write e.g. '3 days', '12 hours', '30 minutes'")
            unit = match["unit"]
            key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
            return {"seconds": int(match["n"]) * _UNIT_SECONDS[key]}
        return value

    @property
    def total(self) -> timedelta:
        return timedelta(
            weeks=self.weeks,
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
            seconds=self.seconds,
        )


class SmsHours(BaseModel):
    """Local hours in the contact's time zone when SMS may go out (002: 09:00–22:00)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @model_validator(mode="after")
    def _ordered(self) -> SmsHours:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must come before end {self.end} (same day)")
        return self


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    template: str = Field(pattern=r"^[A-Za-z0-9_\-/]+$")
    weight: int = Field(1, ge=1, le=100, description="its share against the others (the message's own is 1)")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str = ""
    channel: Channel = Channel.EMAIL
    template: str = Field(pattern=r"^[A-Za-z0-9_\-/]+$")
    delay: Delay = Field(default_factory=Delay)
    after: Anchor = Anchor.PREVIOUS
    unless: list[EventType] = Field(
        default_factory=list,
        description="skip this message if the contact sent one of these events since the start",
    )
    purpose: Purpose = Purpose.MARKETING
    priority: Priority = Priority.IMPORTANT
    on_pressure: OnPressure = Field(
        OnPressure.DEFER,
        description="marketing only: when the contact's daily cap is used, send the next day or drop",
    )
    sender: Sender = Field(
        Sender.DEFAULT,
        description="email only: 'salesperson' sends from and signs as the salesperson of the contact's list",
    )
    enabled: bool = True
    sms_hours: SmsHours | None = Field(None, description="overrides the scenario's SMS hours")
    ignore_sms_hours: bool = Field(
        False, description="send at any hour (e.g. e-signature codes the contact is waiting for)"
    )
    variants: list[Variant] = Field(
        default_factory=list,
        description="other versions of the message for an A/B test; 'template' is version 'a' (weight 1)",
    )
    holdout: int = Field(
        0, ge=0, le=50, description="percent of contacts kept as a control group: they get no message"
    )
    before_date: Delay | None = Field(
        None, description="sent this long before the trigger's date (a booking, the end of a subscription)"
    )
    after_date: Delay | None = Field(None, description="sent this long after the trigger's date")
    at: str | None = Field(
        None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="with whole days before/after the date: the contact's local time that day, e.g. '18:00'",
    )

    @field_validator("variants")
    @classmethod
    def _distinct_variants(cls, variants: list[Variant]) -> list[Variant]:
        seen = {"a", "holdout"}  # the message's own template, and the control group
        for variant in variants:
            if variant.id in seen:
                raise ValueError(
                    f"variant id '{variant.id}' is taken: 'a' is the message's template, and ids are unique"
                )
            seen.add(variant.id)
        return variants

    @model_validator(mode="after")
    def _one_timing(self) -> Message:
        offset = self.before_date or self.after_date
        if self.before_date is not None and self.after_date is not None:
            raise ValueError("give 'before_date' or 'after_date', not both")
        if offset is not None and (self.delay.total or "after" in self.model_fields_set):
            raise ValueError("a message timed from the date takes no 'delay' or 'after'")
        if self.at is not None and (offset is None or offset.total % timedelta(days=1)):
            raise ValueError("'at' needs 'before_date' or 'after_date' in whole days (e.g. '1 day')")
        return self

    @property
    def date_offset(self) -> timedelta | None:
        """Signed offset from the trigger's date, or None for messages timed by ``delay``."""
        if self.before_date is not None:
            return -self.before_date.total
        return self.after_date.total if self.after_date is not None else None


COMPARISONS = ("eq", "in", "lt", "lte", "gt", "gte")  # what a trigger's 'where' may ask of a property
STATUS_EVENT = "status_changed"  # what relance records when a contact attribute changes value


class Threshold(BaseModel):
    """Start once the contact has had ``count`` such events in the current calendar period."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(description="how many events in the period; at least 1")
    per: Literal["day", "week", "month", "year"] = Field(
        "month", description="the calendar period, in the contact's time zone; once per period"
    )

    @field_validator("count")
    @classmethod
    def _positive(cls, count: int) -> int:
        if count < 1:
            raise ValueError(f"count {count}: a threshold counts at least 1 event (write e.g. 'count: 10')")
        return count


class StatusChange(BaseModel):
    """Start when a contact attribute changes, e.g. ``{attribute: status, to: former_client}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    attribute: Identifier
    to: str | None = Field(None, description="the new value; any value when left out")
    from_: str | None = Field(None, alias="from", description="the old value; any value when left out")


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: EventType | None = Field(None, description="the event that starts the journey")
    status: StatusChange | None = Field(None, description="or: a change of a contact attribute")
    ref: str | None = Field(
        None,
        description="event property identifying the trigger (e.g. order_id); the same ref never "
        "starts the same journey twice. Default: the event id.",
    )
    threshold: Threshold | None = Field(
        None, description="start at the Nth event of a period, once per period"
    )
    segment: str | dict[str, Any] | list[Any] | None = Field(
        None, description="entry segment: a default filter's name or criteria; others do not enter"
    )
    reentry: Literal["every_time", "once"] = Field(
        "every_time", description="'once': a contact goes through this journey once, ever"
    )
    where: dict[str, Any] | None = Field(
        None,
        description="conditions on the event's properties, e.g. {units_left: {lte: 2}} or {plan: annual}",
    )
    date: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the event property holding a date messages may be timed from (before_date / after_date)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Trigger:
        if (self.event is None) == (self.status is None):
            raise ValueError(
                "give either 'event' (an event type) or 'status' (an attribute change), not both"
            )
        for name, condition in (self.where or {}).items():
            if isinstance(condition, dict) and (not condition or set(condition) - set(COMPARISONS)):
                raise ValueError(
                    f"where.{name}: compare with {', '.join(COMPARISONS)} (e.g. {{lte: 2}}) or give the value"
                )
        if self.date is not None and self.event is None:
            raise ValueError("'date' names a property of the trigger's event: use it with 'event'")
        if self.threshold is not None and self.event is None:
            raise ValueError("'threshold' counts events: use it with 'event'")
        if self.threshold is not None and (self.ref is not None or self.reentry == "once"):
            raise ValueError("'threshold' starts once per period already: leave out 'ref' and 'reentry'")
        if self.reentry == "once" and self.ref is not None:
            raise ValueError("'reentry: once' starts the journey once per contact: leave out 'ref'")
        if self.segment is not None:
            try:
                resolve(self.segment)
            except SegmentError as error:
                raise ValueError(f"segment: {error}") from None
        return self

    @property
    def event_type(self) -> str:
        return self.event if self.event is not None else STATUS_EVENT

    def admits(self, properties: dict[str, Any]) -> bool:
        """Whether the event's properties meet every 'where' condition."""
        return all(_meets(properties.get(name), c) for name, c in (self.where or {}).items())


def _meets(value: object, condition: object) -> bool:
    if not isinstance(condition, dict):
        return value == condition
    for op, wanted in condition.items():
        if op == "eq" and value != wanted:
            return False
        if op == "in" and value not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
        if op in ("lt", "lte", "gt", "gte"):
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not isinstance(wanted, int | float)
            ):
                return False  # a missing or non-numeric property never passes a comparison
            if not {
                "lt": value < wanted,
                "lte": value <= wanted,
                "gt": value > wanted,
                "gte": value >= wanted,
            }[op]:
                return False
    return True


class Journey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: str = ""
    trigger: Trigger
    exit_on: list[EventType] = Field(
        default_factory=list, description="events that end the journey early (exit goals)"
    )
    messages: list[Message] = Field(min_length=1)

    @field_validator("messages")
    @classmethod
    def _unique_ids(cls, messages: list[Message]) -> list[Message]:
        seen: set[str] = set()
        for message in messages:
            if message.id in seen:
                raise ValueError(f"message id '{message.id}' is used twice in this journey")
            seen.add(message.id)
        return messages

    @model_validator(mode="after")
    def _dates_need_a_date(self) -> Journey:
        dated = [m.id for m in self.messages if m.date_offset is not None]
        if dated and self.trigger.date is None:
            raise ValueError(
                f"message '{dated[0]}' is timed from a date: name the event property holding it "
                "in the trigger, e.g. 'trigger: {event: booking, date: starts_at}'"
            )
        return self

    @model_validator(mode="after")
    def _first_is_relative_to_trigger(self) -> Journey:
        if self.messages and self.messages[0].after is Anchor.PREVIOUS:
            # The first message has no previous message: it counts from the trigger.
            self.messages[0] = self.messages[0].model_copy(update={"after": Anchor.TRIGGER})
        return self

    def event_types(self) -> set[str]:
        types = {self.trigger.event_type, *self.exit_on}
        for message in self.messages:
            types.update(message.unless)
        return types


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: Identifier
    name: str = ""
    description: str = ""
    sms_hours: SmsHours = Field(default_factory=SmsHours)
    journeys: list[Journey] = Field(min_length=1)

    @field_validator("journeys")
    @classmethod
    def _unique_journeys(cls, journeys: list[Journey]) -> list[Journey]:
        seen: set[str] = set()
        for journey in journeys:
            if journey.id in seen:
                raise ValueError(f"journey id '{journey.id}' is used twice in this scenario")
            seen.add(journey.id)
        return journeys

    @property
    def version(self) -> str:
        """Content hash: any change to the scenario gives new journeys a new version."""
        # Defaults left out: a new optional field in relance does not change every version.
        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:12]

    def journey_spec(self, journey: Journey) -> JourneySpec:
        return JourneySpec(
            scenario=self.scenario,
            journey=journey.id,
            version=self.version,
            exit_on=list(journey.exit_on),
            steps=[
                StepSpec(
                    id=m.id,
                    channel=m.channel,
                    template=m.template,
                    delay_seconds=int(m.delay.total.total_seconds()),
                    after=m.after,
                    unless=list(m.unless),
                    purpose=m.purpose,
                    priority=m.priority,
                    on_pressure=m.on_pressure,
                    sender=m.sender,
                    enabled=m.enabled,
                    variants=[
                        VariantSpec(id="a", template=m.template),
                        *(VariantSpec(id=v.id, template=v.template, weight=v.weight) for v in m.variants),
                    ]
                    if m.variants
                    else [],
                    holdout_percent=m.holdout,
                    sms_window=None
                    if m.channel is not Channel.SMS or m.ignore_sms_hours
                    else ((m.sms_hours or self.sms_hours).start, (m.sms_hours or self.sms_hours).end),
                )
                for m in journey.messages
            ],
        )
