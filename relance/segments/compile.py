"""Segments compiled to one SQLAlchemy Core statement: ``SELECT contacts.id … WHERE …``.

Each criterion becomes one boolean condition (true or false, never NULL, so that ``false``
criteria can be negated safely); conditions on events are ``IN (SELECT contact_id …)``
subqueries the planner can run from the events indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select, true
from sqlalchemy.orm import aliased

from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from relance.models.tables.list import ContactList, ListMember
from relance.segments import jsonsql
from relance.segments.duplicates import duplicate_ids
from relance.segments.model import (
    AgeRange,
    AttributeCondition,
    BestLeads,
    Bookings,
    ConsecutiveRejections,
    Count,
    Criteria,
    Period,
    Scalar,
    ScoreRange,
    Segment,
)
from relance.segments.scoring import scores

__all__ = ["EVENT_TYPES", "condition", "contact_ids", "window"]

VISIT, BOOKING = "visit", "booking"
REJECTED, ACCEPTED = "payment_rejected", "payment_accepted"
# Event types the criteria and the lead score read: /v1/events takes them even when no
# scenario declares them, since segments need them recorded.
AUDIENCE_EVENTS = frozenset({VISIT, BOOKING, REJECTED, ACCEPTED, "form", "click", "page_visit"})
EVENT_TYPES = (VISIT, BOOKING, REJECTED, ACCEPTED)
_TICK = timedelta(microseconds=1)  # 'up to now' is [.., now + 1 µs): both databases keep microseconds

Condition = ColumnElement[bool]
ATTRS = Contact.attributes


def window(period: Period | None, now: datetime) -> tuple[datetime | None, datetime]:
    """``[start, end)`` in UTC: the last N days up to now, dates from/to (whole days), or up to now."""
    now = now.astimezone(UTC)
    if period is None:
        return None, now + _TICK
    if period.days is not None:
        return now - timedelta(days=period.days), now + _TICK
    start = datetime.combine(period.from_, datetime.min.time(), UTC) if period.from_ else None
    end = datetime.combine(period.to, datetime.min.time(), UTC) + timedelta(days=1) if period.to else None
    return start, end or now + _TICK


def _in_window(column: Any, period: Period | None, now: datetime) -> list[Condition]:
    start, end = window(period, now)
    return [column < end] + ([column >= start] if start is not None else [])


def _text_in(key: str, values: Sequence[str]) -> Condition:
    return func.coalesce(jsonsql.text(ATTRS, key).in_(list(values)), false())


def _kind(key: str) -> ColumnElement[str]:
    return func.coalesce(jsonsql.kind(ATTRS, key), "missing")


def _counted(types: str, extra: list[Condition], count: Count, now: datetime) -> Condition:
    """The contact has between ``min`` and ``max`` events of this type in the period."""
    matching = select(Event.contact_id).where(
        Event.type == types, *_in_window(Event.occurred_at, count, now), *extra
    )
    grouped = matching.group_by(Event.contact_id)
    conditions: list[Condition] = []
    if count.min:
        conditions.append(Contact.id.in_(grouped.having(func.count() >= count.min)))
    if count.max is not None:
        # contacts with no event at all have 0 and pass 'max': hence NOT IN the ones above it
        conditions.append(Contact.id.not_in(grouped.having(func.count() > count.max)))
    return and_(*conditions) if conditions else true()


def _age(age: AgeRange, now: datetime) -> Condition:
    # Whole years at the reference (UTC) date: born on or before the same day N years earlier.
    # Compared as ISO text, so 29 February is 'after' 28 February, like a birthday.
    today = now.astimezone(UTC).date()
    birth = func.substr(jsonsql.text(ATTRS, "birth_date"), 1, 10)
    conditions: list[Condition] = [birth.like("____-__-__")]
    if age.min is not None:
        conditions.append(birth <= f"{today.year - age.min:04d}-{today.month:02d}-{today.day:02d}")
    if age.max is not None:
        conditions.append(birth > f"{today.year - age.max - 1:04d}-{today.month:02d}-{today.day:02d}")
    return func.coalesce(and_(*conditions), false())


_PRODUCTS = ("subscriptions", "packs")


def _owns(product: str) -> Condition:
    return or_(*(func.coalesce(jsonsql.array_has(ATTRS, key, product), false()) for key in _PRODUCTS))


def _bookings(bookings: Bookings, now: datetime) -> Condition:
    extra: list[Condition] = []
    if bookings.activities:
        extra.append(jsonsql.text(Event.properties, "activity").in_(bookings.activities))
    return _counted(BOOKING, extra, bookings, now)


def _rejection_group(groups: Sequence[str], now: datetime) -> Condition:
    rejected = select(Event.contact_id).where(
        Event.type == REJECTED,
        Event.occurred_at < now.astimezone(UTC) + _TICK,
        jsonsql.text(Event.properties, "group").in_(list(groups)),
    )
    return Contact.id.in_(rejected)


def _consecutive(rule: ConsecutiveRejections, now: datetime) -> Condition:
    """Rejections of a group since its last accepted payment: at least ``min`` of them."""
    end = now.astimezone(UTC) + _TICK
    payments = (
        select(
            Event.contact_id.label("contact_id"),
            Event.type.label("type"),
            jsonsql.text(Event.properties, "group").label("grp"),
            Event.occurred_at.label("at"),
        )
        .where(Event.type.in_([REJECTED, ACCEPTED]), Event.occurred_at < end)
        .subquery("payments")
    )
    groups = list(rule.group)
    ok = aliased(payments, name="accepted")
    last_ok = (
        select(ok.c.contact_id, ok.c.grp, func.max(ok.c.at).label("at"))
        .where(ok.c.type == ACCEPTED, ok.c.grp.in_(groups))
        .group_by(ok.c.contact_id, ok.c.grp)
        .subquery("last_accepted")
    )
    bad = aliased(payments, name="rejected")
    streaks = (
        select(bad.c.contact_id)
        .select_from(bad)
        .outerjoin(last_ok, and_(last_ok.c.contact_id == bad.c.contact_id, last_ok.c.grp == bad.c.grp))
        .where(
            bad.c.type == REJECTED,
            bad.c.grp.in_(groups),
            or_(last_ok.c.at.is_(None), bad.c.at > last_ok.c.at),  # an acceptance at the same instant wins
        )
        .group_by(bad.c.contact_id, bad.c.grp)
        .having(func.count() >= rule.min)
    )
    return Contact.id.in_(streaks)


def _purchase(period: Period, now: datetime) -> Condition:
    return func.coalesce(and_(*_in_window(Contact.last_purchase_at, period, now)), false())


def _badge(badge: bool | Sequence[str]) -> Condition:
    if isinstance(badge, bool):
        has = and_(
            _kind("badge").in_(["string", "number", "true"]),
            func.coalesce(jsonsql.text(ATTRS, "badge"), "x") != "",
        )
        return has if badge else not_(has)
    return _text_in("badge", badge)


def _equals(key: str, value: Scalar) -> Condition:
    if isinstance(value, bool):
        return _kind(key) == ("true" if value else "false")
    if isinstance(value, int | float):
        return func.coalesce(jsonsql.number(ATTRS, key) == float(value), false())
    return _text_in(key, [value])


def _attribute(key: str, rule: AttributeCondition) -> Condition:
    conditions: list[Condition] = []
    if rule.eq is not None:
        conditions.append(_equals(key, rule.eq))
    if rule.one_of is not None:
        conditions.append(or_(*(_equals(key, value) for value in rule.one_of)))
    if rule.exists is not None:
        present = _kind(key).not_in(["missing", "null"])
        conditions.append(present if rule.exists else not_(present))
    value = jsonsql.number(ATTRS, key)
    for bound, compare in (
        (rule.gt, value.__gt__),
        (rule.gte, value.__ge__),
        (rule.lt, value.__lt__),
        (rule.lte, value.__le__),
    ):
        if bound is not None:
            conditions.append(func.coalesce(compare(bound), false()))
    return and_(*conditions)


def _lists(names: Sequence[str]) -> Condition:
    members = (
        select(ListMember.contact_id)
        .join(ContactList, ContactList.id == ListMember.list_id)
        .where(ContactList.name.in_(list(names)), ContactList.archived_at.is_(None))
    )
    return Contact.id.in_(members)


def _score(rule: ScoreRange) -> Condition:
    table = scores(rule.points)
    low = rule.min if rule.min is not None else float("-inf")
    high = rule.max if rule.max is not None else float("inf")
    inside = [table.c.score >= rule.min] if rule.min is not None else []
    inside += [table.c.score <= rule.max] if rule.max is not None else []
    if low <= 0 <= high:  # contacts without any interaction score 0: they are in
        return Contact.id.not_in(select(table.c.contact_id).where(not_(and_(*inside))))
    return Contact.id.in_(select(table.c.contact_id).where(*inside))


def _best_leads(rule: BestLeads) -> Condition:
    table = scores(rule.points)
    top = (
        select(table.c.contact_id)
        .where(table.c.score > 0)
        .order_by(table.c.score.desc(), table.c.contact_id)
        .limit(rule.top)
    )
    return Contact.id.in_(top)


def _flag(key: str, wanted: bool) -> Condition:
    is_true = _kind(key) == "true"
    return is_true if wanted else not_(is_true)


_Compile = Callable[[Any, datetime], Condition]
_CATALOG: dict[str, _Compile] = {
    "club": lambda v, now: _text_in("club", v),
    "status": lambda v, now: _text_in("status", v),
    "civility": lambda v, now: _text_in("civility", v),
    "age": _age,
    "subscriptions_or_packs": lambda v, now: or_(*(_owns(p) for p in v)),
    "subscriptions_and_packs": lambda v, now: and_(*(_owns(p) for p in v)),
    "creation_channel": lambda v, now: _text_in("creation_channel", v),
    "visits": lambda v, now: _counted(VISIT, [], v, now),
    "bookings": _bookings,
    "rejection_group": _rejection_group,
    "consecutive_rejections": _consecutive,
    "purchase": _purchase,
    "badge": lambda v, now: _badge(v),
    "attributes": lambda v, now: and_(*(_attribute(k, rule) for k, rule in v.items())),
    "list": lambda v, now: _lists(v),
    "email_status": lambda v, now: Contact.email_status.in_(list(v)),
    "unsubscribed": lambda v, now: (
        Contact.unsubscribed_at.is_not(None) if v else Contact.unsubscribed_at.is_(None)
    ),
    "followed": lambda v, now: _flag("followed", v),
    "contact_method": lambda v, now: _text_in("contact_method", v),
    "possible_duplicates": lambda v, now: (Contact.id.in_ if v else Contact.id.not_in)(duplicate_ids()),
    "score": lambda v, now: _score(v),
    "best_leads": lambda v, now: _best_leads(v),
}


def condition(criteria: Criteria, now: datetime) -> list[Condition]:
    """One condition per criterion written (AND between them)."""
    return [_CATALOG[name](value, now) for name, value in criteria.given().items()]


def contact_ids(segment: Segment, now: datetime) -> Select[int]:
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware 'now'")
    conditions = [c for criteria in segment.criteria for c in condition(criteria, now)]
    return select(Contact.id).where(*conditions) if conditions else select(Contact.id)
