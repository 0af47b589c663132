"""Timing analysis (A-03): when do conversions come, and from which reminder?

- By reminder rank: per journey, each message in the order the scenario sends them (1: the
  first message, 2: the first reminder...): sends, the conversions credited to it (last touch,
  as in the monthly report) and its share of the journey's conversions. A reminder that adds
  little is one a marketer can drop.
- By delay: how long after the credited message the purchases came, in buckets; where they
  stop, a longer wait before the next reminder buys nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.tables import Delivery
from relance.reports.messages import DEFAULT_WINDOW, credited

BUCKETS: list[tuple[str, timedelta]] = [
    ("0-1 h", timedelta(hours=1)),
    ("1-24 h", timedelta(days=1)),
    ("1-3 d", timedelta(days=3)),
    ("3-7 d", timedelta(days=7)),
    ("7-14 d", timedelta(days=14)),
    ("14-30 d", timedelta(days=30)),
]


class RankRow(BaseModel):
    scenario: str
    journey: str
    rank: int | None = Field(
        description="1 for the first message, 2 for the first reminder; None: not in the files"
    )
    message: str
    sent: int
    conversions: int
    conversion_rate: float | None
    share: float | None = Field(description="its part of the journey's conversions")


class DelayRow(BaseModel):
    scenario: str
    journey: str
    message: str
    bucket: str
    conversions: int


class TimingReport(BaseModel):
    by_rank: list[RankRow]
    by_delay: list[DelayRow]


def bucket_of(delay: timedelta) -> str:
    for name, limit in BUCKETS:
        if delay <= limit:
            return name
    return f"over {BUCKETS[-1][0].split('-')[1]}"


async def timing_report(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    ranks: dict[tuple[str, str, str], int],
    scenario: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> TimingReport:
    """``ranks`` gives each (scenario, journey, message) its place in the journey."""
    sends = select(Delivery.scenario, Delivery.journey, Delivery.message, func.count()).where(
        Delivery.status == "sent", Delivery.at >= since, Delivery.at < until
    )
    if scenario is not None:
        sends = sends.where(Delivery.scenario == scenario)
    sent = {
        (s, j, m): n
        for s, j, m, n in (
            await session.execute(sends.group_by(Delivery.scenario, Delivery.journey, Delivery.message))
        ).all()
    }
    ranked = credited(since, until, window)
    won = (
        select(Delivery.scenario, Delivery.journey, Delivery.message, ranked.c.sent_at, ranked.c.bought_at)
        .join(ranked, ranked.c.delivery_id == Delivery.id)
        .where(ranked.c.rank == 1, Delivery.at >= since, Delivery.at < until)
    )
    if scenario is not None:
        won = won.where(Delivery.scenario == scenario)
    conversions: Counter[tuple[str, str, str]] = Counter()
    delays: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for s, j, m, sent_at, bought_at in (await session.execute(won)).all():
        conversions[(s, j, m)] += 1
        delays[(s, j, m)][bucket_of(bought_at - sent_at)] += 1
    per_journey: Counter[tuple[str, str]] = Counter()
    for (s, j, _), n in conversions.items():
        per_journey[(s, j)] += n
    rows = []
    for (s, j, m), n in sent.items():
        won_here, journey_total = conversions[(s, j, m)], per_journey[(s, j)]
        rows.append(
            RankRow(
                scenario=s,
                journey=j,
                rank=ranks.get((s, j, m)),
                message=m,
                sent=n,
                conversions=won_here,
                conversion_rate=won_here / n if n else None,
                share=won_here / journey_total if journey_total else None,
            )
        )
    rows.sort(key=lambda r: (r.scenario, r.journey, r.rank is None, r.rank or 0, r.message))
    order = [name for name, _ in BUCKETS] + [bucket_of(timedelta(days=365))]
    by_delay = [
        DelayRow(scenario=s, journey=j, message=m, bucket=b, conversions=counts[b])
        for (s, j, m), counts in sorted(delays.items())
        for b in order
        if counts[b]
    ]
    return TimingReport(by_rank=rows, by_delay=by_delay)
