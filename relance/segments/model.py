"""What a segment file may say: the criteria catalog (C-07), validated by pydantic.

A segment is a mapping of criteria, or a list of such mappings; every criterion must hold
(AND), and a criterion given several values matches any of them (OR), as in 002 §1.3.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

__all__ = [
    "AgeRange",
    "AttributeCondition",
    "BestLeads",
    "Bookings",
    "ConsecutiveRejections",
    "Count",
    "Criteria",
    "Period",
    "ScoreRange",
    "Segment",
]

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CreationChannel = Literal["club", "api", "online", "kiosk", "import"]
EmailStatus = Literal["ok", "soft_bounced", "hard_bounced"]
CREATION_CHANNELS: tuple[str, ...] = get_args(CreationChannel)
EMAIL_STATUSES: tuple[str, ...] = get_args(EmailStatus)


def _listed(value: Any) -> Any:
    """One value stands for a list of one: ``status: client`` is ``status: [client]``."""
    if isinstance(value, str | int | float | bool):
        return [value]
    return value


def _text(value: Any) -> Any:
    # YAML reads `club: 12` as a number; values are compared as text, so accept and convert it
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[StrictStr, BeforeValidator(_text), Field(min_length=1, max_length=200)]
Texts = Annotated[list[Text], BeforeValidator(_listed), Field(min_length=1, max_length=1000)]
Channels = Annotated[list[CreationChannel], BeforeValidator(_listed), Field(min_length=1)]
Statuses = Annotated[list[EmailStatus], BeforeValidator(_listed), Field(min_length=1)]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


class Period(_Strict):
    """``days: N`` (the last N days up to now), or ``from:``/``to:`` dates (both days included)."""

    days: int | None = Field(None, ge=1, le=36600)
    from_: date | None = Field(None, alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Period:
        if self.days is not None and (self.from_ or self.to):
            raise ValueError("give either 'days' or 'from'/'to', not both")
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError(f"'from' ({self.from_}) is after 'to' ({self.to}): swap them")
        return self

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC; no period at all means 'ever, up to now'."""
        if self.days is not None:
            return now - timedelta(days=self.days), now
        start = start_of(self.from_) if self.from_ else None
        end = start_of(self.to) + timedelta(days=1) if self.to else None
        return start, end


class Count(Period):
    """How many events in a period: ``min`` and/or ``max`` (both included)."""

    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> Count:
        if self.min is None and self.max is None:
            raise ValueError("give 'min' and/or 'max', e.g. {min: 3, days: 15}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is above 'max' ({self.max})")
        return self


class Bookings(Count):
    activities: Texts | None = None


class AgeRange(_Strict):
    """Age in whole years at the reference date, from the ``birth_date`` attribute."""

    min: int | None = Field(None, ge=0, le=150)
    max: int | None = Field(None, ge=0, le=150)

    @model_validator(mode="after")
    def _some_bound(self) -> AgeRange:
        if self.min is None and self.max is None:
            raise ValueError("give 'min' and/or 'max' years, e.g. {min: 25, max: 50}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is above 'max' ({self.max})")
        return self


class ConsecutiveRejections(_Strict):
    """The last ``min`` payments of a rejection group were all rejected."""

    group: Texts
    min: int = Field(ge=1, le=1000)


class ScoreRange(_Strict):
    min: float | None = None
    max: float | None = None
    points: dict[str, int] | None = Field(None, description="points per interaction; default: settings")

    @model_validator(mode="after")
    def _some_bound(self) -> ScoreRange:
        if self.min is None and self.max is None:
            raise ValueError("give 'min' and/or 'max' points, e.g. {min: 10}")
        return self


class BestLeads(_Strict):
    top: int = Field(100, ge=1, le=10_000_000)
    points: dict[str, int] | None = None


def _best(value: Any) -> Any:
    return {"top": value} if isinstance(value, int) and not isinstance(value, bool) else value


class AttributeCondition(_Strict):
    """One custom attribute: equal to a value, one of values, present or absent, compared as a number."""

    eq: Scalar | None = None
    one_of: list[Scalar] | None = Field(None, min_length=1)
    exists: bool | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"one_of": value}
        if isinstance(value, str | int | float | bool):
            return {"eq": value}
        return value

    @model_validator(mode="after")
    def _something(self) -> AttributeCondition:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("say what to check: a value, a list of values, exists, gt, gte, lt or lte")
        return self


class Criteria(_Strict):
    """Every criterion given must hold; the values of one criterion are alternatives."""

    club: Texts | None = Field(None, description="attribute 'club' (the club or site)")
    status: Texts | None = Field(None, description="attribute 'status': client, prospect, …")
    civility: Texts | None = Field(None, description="attribute 'civility'")
    age: AgeRange | None = Field(None, description="from attribute 'birth_date' (YYYY-MM-DD)")
    subscriptions_or_packs: Texts | None = Field(None, description="has any of them")
    subscriptions_and_packs: Texts | None = Field(None, description="has all of them")
    creation_channel: Channels | None = None
    visits: Count | None = Field(None, description="events 'visit'")
    bookings: Bookings | None = Field(None, description="events 'booking', property 'activity'")
    rejection_group: Texts | None = Field(None, description="events 'payment_rejected', property 'group'")
    consecutive_rejections: ConsecutiveRejections | None = None
    purchase: Period | None = Field(None, description="last_purchase_at in the period")
    badge: StrictBool | Texts | None = Field(None, description="attribute 'badge': has one, or one of")
    attributes: dict[str, AttributeCondition] | None = Field(None, min_length=1)
    list_: Texts | None = Field(None, alias="list", description="member of one of these active lists")
    email_status: Statuses | None = None
    unsubscribed: bool | None = None
    followed: bool | None = None
    contact_method: Texts | None = None
    possible_duplicates: bool | None = None
    score: ScoreRange | None = None
    best_leads: Annotated[BestLeads, BeforeValidator(_best)] | None = None

    @field_validator("attributes")
    @classmethod
    def _names(cls, value: dict[str, AttributeCondition] | None) -> dict[str, AttributeCondition] | None:
        for name in value or {}:
            if not ATTRIBUTE_NAME.match(name):
                raise ValueError(
                    f"attribute name '{name}': use letters, digits and '_', starting with a letter"
                )
        return value

    def given(self) -> dict[str, Any]:
        """The criteria actually written, by name."""
        fields = type(self).model_fields
        return {
            fields[name].alias or name: getattr(self, name)
            for name in sorted(self.model_fields_set)
            if getattr(self, name) is not None
        }


class Segment(BaseModel):
    """A validated segment; ``source`` says where it came from (a file, 'api', a built-in name)."""

    model_config = ConfigDict(frozen=True)

    criteria: tuple[Criteria, ...] = ()
    source: str = ""

    def names(self) -> set[str]:
        return {name for c in self.criteria for name in c.given()}
