"""The analysis of A/B tests and holdout groups (A-04).

Each ledger row records the group its contact was drawn into at send time
(``deliveries.variant``, drawn by ``delivery/variants.py``). Per group: the
contacts, sends, clicks and purchases within a window, and a two-proportion
test against the control group (the holdout, else variant ``a``).
"""

from __future__ import annotations

import math
from datetime import timedelta

from pydantic import BaseModel, Field
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.contacts.consent import PURCHASE_EVENT
from relance.delivery.variants import HOLDOUT
from relance.delivery.variants import variant_of as variant_of  # the groups analysed here
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.models.tables.event import Event
from relance.reports.sql import plus_seconds


class GroupResult(BaseModel):
    group: str = Field(description="a variant id, or 'holdout'")
    contacts: int = Field(description="contacts the message was due for in this group")
    sent: int
    clicked: int = Field(description="contacts who clicked a link of the message")
    converted: int = Field(description="contacts who bought within the window after the message was due")
    conversion_rate: float | None
    lift: float | None = Field(None, description="conversion rate over the control's, minus 1")
    p_value: float | None = Field(None, description="two-sided, two-proportion z-test against the control")
    significant: bool = Field(False, description="p < 0.05 with at least 30 contacts in each group")


class ExperimentReport(BaseModel):
    scenario: str
    journey: str
    message: str
    window_days: int
    control: str | None = Field(description="'holdout' when there is one, else variant 'a'")
    groups: list[GroupResult]


async def experiment_report(
    session: AsyncSession, scenario: str, journey: str, message: str, window: timedelta = timedelta(days=7)
) -> ExperimentReport:
    """Per group: contacts, sends, clicks, conversions, and the test against the control group."""
    d = Delivery.__table__.alias("d")
    bought = (
        select(Event.id)
        .where(
            Event.contact_id == d.c.contact_id,
            Event.type == PURCHASE_EVENT,
            Event.occurred_at > d.c.at,
            Event.occurred_at <= plus_seconds(d.c.at, int(window.total_seconds())),
        )
        .exists()
    )
    clicked = (
        select(DeliveryEvent.id)
        .where(DeliveryEvent.delivery_key == d.c.idempotency_key, DeliveryEvent.kind == "click")
        .exists()
    )
    per_contact = (
        select(
            d.c.variant.label("grp"),
            d.c.contact_external_id.label("contact"),
            func.max(case((d.c.status == "sent", 1), else_=0)).label("sent"),
            func.max(case((clicked, 1), else_=0)).label("clicked"),
            func.max(case((bought, 1), else_=0)).label("converted"),
        )
        .where(
            d.c.scenario == scenario,
            d.c.journey == journey,
            d.c.message == message,
            d.c.variant.is_not(None),
            ~d.c.idempotency_key.contains("#deferred"),  # a deferral's row is not a second contact
        )
        .group_by(d.c.variant, d.c.contact_external_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            per_contact.c.grp,
            func.count(),
            func.sum(per_contact.c.sent),
            func.sum(per_contact.c.clicked),
            func.sum(per_contact.c.converted),
        ).group_by(per_contact.c.grp)
    )
    groups = {
        grp: GroupResult(
            group=grp,
            contacts=n,
            sent=int(sent or 0),
            clicked=int(clicks or 0),
            converted=int(conv or 0),
            conversion_rate=(conv or 0) / n if n else None,
        )
        for grp, n, sent, clicks, conv in rows.all()
    }
    control = HOLDOUT if HOLDOUT in groups else ("a" if "a" in groups else None)
    if control is not None:
        base = groups[control]
        for result in groups.values():
            if result.group != control:
                _compare(result, base)
    ordered = sorted(groups.values(), key=lambda g: (g.group != control, g.group))
    return ExperimentReport(
        scenario=scenario,
        journey=journey,
        message=message,
        window_days=int(window / timedelta(days=1)),
        control=control,
        groups=ordered,
    )


def _compare(result: GroupResult, control: GroupResult) -> None:
    """Two-proportion z-test (pooled), two-sided; ``significant`` also wants 30 contacts a side."""
    n1, n2 = result.contacts, control.contacts
    p1, p2 = result.converted / n1, control.converted / n2
    if p2 > 0:
        result.lift = p1 / p2 - 1
    pooled = (result.converted + control.converted) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return
    z = (p1 - p2) / spread
    result.p_value = math.erfc(abs(z) / math.sqrt(2))
    result.significant = result.p_value < 0.05 and min(n1, n2) >= 30
