"""Per message and month: sends, deliveries, engagement rates, attributed revenue (A-01).

One aggregate statement, whatever the size of the ledger: a ``GROUP BY`` over
the deliveries of the period, joined to two per-delivery summaries (the delivery events,
and the purchases each delivery is credited with). Definitions: docs/reports.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Row, Subquery, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.contacts.consent import PURCHASE_EVENT
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.models.tables.event import Event
from relance.reports.sql import plus_seconds, utc_month
from relance.segments import jsonsql

__all__ = ["DEFAULT_WINDOW", "MessageMonth", "message_report"]

DEFAULT_WINDOW = timedelta(days=7)
# Handed to the provider. 'bounced' rows were sent, then reported undeliverable;
# 'unconfirmed' ones may or may not have left (the worker stopped mid-send): not counted.
SENT = ("sent", "bounced")
BOUNCES = ("hard_bounce", "soft_bounce")
OPEN, CLICK, UNSUBSCRIBE, COMPLAINT = "open", "click", "unsubscribe", "complaint"


class MessageMonth(BaseModel):
    """One message (scenario, journey, message, channel) in one UTC month of sends."""

    scenario: str
    journey: str
    message: str
    channel: str
    month: str = Field(description="YYYY-MM, in UTC, of the send")
    sent: int = Field(description="messages handed to the provider, resends included")
    bounced: int = Field(description="sent messages with a hard or soft bounce")
    delivered: int = Field(description="sent - bounced")
    opened: int = Field(description="delivered messages opened at least once")
    clicked: int = Field(description="delivered messages with at least one click")
    unsubscribed: int = Field(description="messages whose unsubscribe link was used")
    complained: int = Field(description="messages reported as spam")
    purchases: int = Field(description="purchases attributed to these messages (last touch)")
    revenue: float = Field(description="sum of the attributed purchases' amount")
    open_rate: float | None = Field(description="opened / delivered; null when nothing was delivered")
    click_rate: float | None = Field(description="clicked / delivered")
    unsubscribe_rate: float | None = Field(description="unsubscribed / delivered")
    rpm: float = Field(description="revenue per thousand sends: revenue / sent * 1000")


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.max(case((condition, 1), else_=0))


def credited(since: datetime, until: datetime, window: timedelta) -> Subquery:
    """Every purchase with the messages that compete for it; ``rank == 1`` is the one credited.

    A purchase goes to the contact's last message sent strictly before it, if that message is
    at most ``window`` older; ties on the instant go to the later ledger row, so that each
    purchase is credited once. Only purchases that can land in the period are read.
    """
    seconds = int(window.total_seconds())
    amount = jsonsql.number(Event.properties, "amount")
    purchases = (
        select(Event.id, Event.contact_id, Event.occurred_at, amount.label("amount"))
        .where(
            Event.type == PURCHASE_EVENT,
            Event.occurred_at > since,
            Event.occurred_at <= until + window,
            amount.is_not(None),
        )
        .subquery("purchases")
    )
    # Every message of the contact competes for the purchase (any scenario, any channel); a
    # message sent after the period can take a purchase from one sent in it. Bounced ones
    # never reached the contact: no credit.
    touches = (
        select(Delivery.id, Delivery.contact_id, Delivery.at)
        .where(
            Delivery.status == "sent",
            Delivery.contact_id.is_not(None),
            Delivery.at >= since,
            Delivery.at < until + window,
        )
        .subquery("touches")
    )
    ranked = (
        select(
            touches.c.id.label("delivery_id"),
            touches.c.at.label("sent_at"),
            purchases.c.occurred_at.label("bought_at"),
            purchases.c.amount,
            func.row_number()
            .over(partition_by=purchases.c.id, order_by=(touches.c.at.desc(), touches.c.id.desc()))
            .label("rank"),
        )
        .select_from(purchases)
        .join(
            touches,
            (touches.c.contact_id == purchases.c.contact_id)
            & (touches.c.at < purchases.c.occurred_at)
            & (purchases.c.occurred_at <= plus_seconds(touches.c.at, seconds)),
        )
        .subquery("ranked")
    )
    return ranked


def attributed(since: datetime, until: datetime, window: timedelta) -> Subquery:
    """Per delivery: the purchases credited to it and their amount (see ``credited``)."""
    ranked = credited(since, until, window)
    return (
        select(
            ranked.c.delivery_id,
            func.count().label("purchases"),
            func.sum(ranked.c.amount).label("revenue"),
        )
        .where(ranked.c.rank == 1)
        .group_by(ranked.c.delivery_id)
        .subquery("attributed")
    )


async def message_report(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    scenario: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> list[MessageMonth]:
    """Messages sent in ``[since, until)`` (timezone-aware), grouped by message and UTC month.

    Opens, clicks and purchases that come after ``until`` still count for the messages sent
    before it. ``window`` is the attribution window (whole seconds).
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if window < timedelta(0):
        raise ValueError("the attribution window cannot be negative")
    in_period = [Delivery.status.in_(SENT), Delivery.at >= since, Delivery.at < until]
    if scenario is not None:
        in_period.append(Delivery.scenario == scenario)
    kind = DeliveryEvent.kind
    # One row per delivery that has events: whether it bounced, was opened... (at most once each).
    flags = (
        select(
            DeliveryEvent.delivery_key,
            _flag(kind.in_(BOUNCES)).label("bounced"),
            _flag(kind == OPEN).label("opened"),
            _flag(kind == CLICK).label("clicked"),
            _flag(kind == UNSUBSCRIBE).label("unsubscribed"),
            _flag(kind == COMPLAINT).label("complained"),
        )
        .where(kind.in_((*BOUNCES, OPEN, CLICK, UNSUBSCRIBE, COMPLAINT)))
        .group_by(DeliveryEvent.delivery_key)
        .subquery("flags")
    )
    credit = attributed(since, until, window)
    month = utc_month(Delivery.at)
    keys = (Delivery.scenario, Delivery.journey, Delivery.message, Delivery.channel, month)

    def total(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(column), 0)

    def if_delivered(column: ColumnElement[int]) -> ColumnElement[Any]:
        # engagement reported on a message that bounced (a stray open, a late bounce) is not
        # counted: the rates stay shares of the delivered messages
        return total(case((flags.c.bounced == 0, column), else_=0))

    statement = (
        select(
            *keys[:4],
            month.label("month"),
            func.count().label("sent"),
            total(flags.c.bounced).label("bounced"),
            if_delivered(flags.c.opened).label("opened"),
            if_delivered(flags.c.clicked).label("clicked"),
            if_delivered(flags.c.unsubscribed).label("unsubscribed"),
            total(flags.c.complained).label("complained"),
            total(credit.c.purchases).label("purchases"),
            total(credit.c.revenue).label("revenue"),
        )
        .select_from(Delivery)
        .outerjoin(flags, flags.c.delivery_key == Delivery.idempotency_key)
        .outerjoin(credit, credit.c.delivery_id == Delivery.id)
        .where(*in_period)
        .group_by(*keys)
    )
    rows = (await session.execute(statement)).all()
    # Sorted here, on the few result rows: an ORDER BY would make PostgreSQL sort every
    # delivery of the period to group them, instead of hashing.
    return sorted(map(_row, rows), key=lambda r: (r.month, r.scenario, r.journey, r.message, r.channel))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _row(r: Row[Any]) -> MessageMonth:
    sent, bounced = int(r.sent), int(r.bounced)
    delivered = sent - bounced
    opened, clicked = int(r.opened), int(r.clicked)
    unsubscribed = int(r.unsubscribed)
    # Float sums differ in the last bits between databases: money is shown to the cent.
    revenue = round(float(r.revenue), 2)
    return MessageMonth(
        scenario=r.scenario,
        journey=r.journey,
        message=r.message,
        channel=r.channel,
        month=r.month,
        sent=sent,
        bounced=bounced,
        delivered=delivered,
        opened=opened,
        clicked=clicked,
        unsubscribed=unsubscribed,
        complained=int(r.complained),
        purchases=int(r.purchases),
        revenue=revenue,
        open_rate=_rate(opened, delivered),
        click_rate=_rate(clicked, delivered),
        unsubscribe_rate=_rate(unsubscribed, delivered),
        rpm=round(revenue / sent * 1000, 2),
    )
