"""Timing analysis (A-03): when do conversions come, and from which reminder?

- By reminder rank: per journey, its messages in the order they are sent (1: the first
  message, 2: the first reminder...): sends, the conversions credited to them (last touch, the
  monthly report's attribution) and what each extra reminder adds. A reminder that adds little
  is one a marketer can drop.
- By delay: how long after the credited message the purchases came, in buckets; where they
  stop, a longer wait before the next reminder buys nothing.

Both are aggregated by the database (two ``GROUP BY`` statements); Python only merges and
orders the few result rows. Definitions: docs/reports.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Integer, and_, case, distinct, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.tables.delivery import Delivery
from relance.reports.messages import DEFAULT_WINDOW, SENT, attributed, credited
from relance.reports.sql import plus_seconds

if TYPE_CHECKING:
    from relance.scenarios.model import Scenario

__all__ = [
    "BUCKETS",
    "BUCKET_NAMES",
    "DelayRow",
    "RankRow",
    "TimingReport",
    "bucket_of",
    "ranks_from_scenarios",
    "timing_report",
]

# (name, upper bound included)
BUCKETS: list[tuple[str, timedelta]] = [
    ("0-1 h", timedelta(hours=1)),
    ("1-24 h", timedelta(days=1)),
    ("1-3 d", timedelta(days=3)),
    ("3-7 d", timedelta(days=7)),
    ("7-14 d", timedelta(days=14)),
    ("14-30 d", timedelta(days=30)),
]
OVER = "over 30 d"  # only with an attribution window longer than 30 days
BUCKET_NAMES: list[str] = [name for name, _ in BUCKETS] + [OVER]

Ranks = Mapping[tuple[str, str, str], int]


class RankRow(BaseModel):
    scenario: str
    journey: str
    rank: int | None = Field(
        description="1 for the first message, 2 for the first reminder...; null: not in the scenario files"
    )
    messages: list[str] = Field(description="the messages sent at this rank")
    sent: int = Field(description="sends at this rank, as in the monthly report (resends included)")
    runs: int = Field(description="journey runs (workflow ids) that got a message at this rank")
    conversions: int = Field(description="purchases credited (last touch) to this rank's sends")
    conversion_rate: float | None = Field(description="conversions / sent")
    cumulative_conversions: int | None = Field(description="conversions of ranks 1 to this one")
    cumulative_rate: float | None = Field(
        description="cumulative_conversions / runs of rank 1: the journey's conversion if it stopped here"
    )
    marginal_rate: float | None = Field(
        description="conversions / runs of rank 1: what this extra reminder adds to the journey's conversion"
    )
    share: float | None = Field(description="conversions / all the journey's conversions")


class DelayRow(BaseModel):
    scenario: str
    journey: str
    message: str
    conversions: int
    buckets: dict[str, int] = Field(description="conversions per delay after the message, every bucket")


class TimingReport(BaseModel):
    rank_by: Literal["scenarios", "sends"] = Field(
        description="ranks from the scenario files, or from the order of the first sends of each run"
    )
    by_rank: list[RankRow]
    by_delay: list[DelayRow]


def bucket_of(delay: timedelta) -> str:
    """The bucket of a delay, as the database computes it (for readers and tests)."""
    return next((name for name, limit in BUCKETS if delay <= limit), OVER)


def ranks_from_scenarios(scenarios: Iterable[Scenario]) -> dict[tuple[str, str, str], int]:
    """Each (scenario, journey, message) with its place in the journey, from 1."""
    return {
        (s.scenario, j.id, m.id): n
        for s in scenarios
        for j in s.journeys
        for n, m in enumerate(j.messages, start=1)
    }


def _scenario_rank(ranks: Ranks) -> ColumnElement[Any]:
    if not ranks:
        return null()
    whens = [
        (and_(Delivery.scenario == s, Delivery.journey == j, Delivery.message == m), n)
        for (s, j, m), n in sorted(ranks.items())
    ]
    return case(*whens, else_=null()).cast(Integer)


async def timing_report(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    ranks: Ranks | None = None,
    scenario: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> TimingReport:
    """Messages sent in ``[since, until)`` (timezone-aware).

    ``ranks`` gives each (scenario, journey, message) its place in the journey (see
    ``ranks_from_scenarios``); without it, a message's rank in a run is the order of its first
    send among the run's messages (ties on the instant: by message id), over the whole ledger.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    in_period = [Delivery.status.in_(SENT), Delivery.at >= since, Delivery.at < until]
    if scenario is not None:
        in_period.append(Delivery.scenario == scenario)

    sends = select(
        Delivery.id, Delivery.scenario, Delivery.journey, Delivery.message, Delivery.workflow_id
    ).where(*in_period)
    if ranks is not None:
        sends = sends.add_columns(_scenario_rank(ranks).label("rank"))
    else:
        first_sends = select(
            Delivery.workflow_id, Delivery.message, func.min(Delivery.at).label("first_at")
        ).where(Delivery.status.in_(SENT))
        if scenario is not None:
            first_sends = first_sends.where(Delivery.scenario == scenario)
        first = first_sends.group_by(Delivery.workflow_id, Delivery.message).subquery("first_sends")
        order = select(
            first.c.workflow_id,
            first.c.message,
            func.row_number()
            .over(partition_by=first.c.workflow_id, order_by=(first.c.first_at, first.c.message))
            .label("rank"),
        ).subquery("run_order")
        sends = sends.add_columns(order.c.rank).join(
            order, (order.c.workflow_id == Delivery.workflow_id) & (order.c.message == Delivery.message)
        )
    per_send = sends.subquery("sends")
    credit = attributed(since, until, window)
    by_rank = (
        select(
            per_send.c.scenario,
            per_send.c.journey,
            per_send.c.rank,
            per_send.c.message,
            func.count().label("sent"),
            func.count(distinct(per_send.c.workflow_id)).label("runs"),
            func.coalesce(func.sum(credit.c.purchases), 0).label("conversions"),
        )
        .select_from(per_send)
        .outerjoin(credit, credit.c.delivery_id == per_send.c.id)
        .group_by(per_send.c.scenario, per_send.c.journey, per_send.c.rank, per_send.c.message)
    )
    rank_rows = (await session.execute(by_rank)).all()

    won = credited(since, until, window)
    bucket = case(
        *[
            (won.c.bought_at <= plus_seconds(won.c.sent_at, int(limit.total_seconds())), i)
            for i, (_, limit) in enumerate(BUCKETS)
        ],
        else_=len(BUCKETS),
    )
    delays = (
        select(Delivery.scenario, Delivery.journey, Delivery.message, bucket.label("bucket"))
        .join(won, won.c.delivery_id == Delivery.id)
        .where(won.c.rank == 1, *in_period)
        .subquery("delays")
    )
    by_delay = select(
        delays.c.scenario, delays.c.journey, delays.c.message, delays.c.bucket, func.count().label("n")
    ).group_by(delays.c.scenario, delays.c.journey, delays.c.message, delays.c.bucket)
    delay_rows = (await session.execute(by_delay)).all()
    # Sorted here, on the few result rows (as in the monthly report).
    rows = _rank_rows(rank_rows)
    return TimingReport(
        rank_by="sends" if ranks is None else "scenarios",
        by_rank=rows,
        by_delay=_delay_rows(delay_rows, rows),
    )


def _rank_rows(result: Iterable[Any]) -> list[RankRow]:
    # One result row per (journey, rank, message). A rank holds one message per run, so its rows
    # add up exactly; unranked messages (gone from the files) stay one row each.
    merged: dict[tuple[str, str, int | None, str], list[Any]] = {}
    for r in result:
        key = (r.scenario, r.journey, r.rank, "" if r.rank is not None else r.message)
        entry = merged.setdefault(key, [set(), 0, 0, 0])
        entry[0].add(r.message)
        entry[1] += int(r.sent)
        entry[2] += int(r.runs)
        entry[3] += int(r.conversions)
    journeys: dict[tuple[str, str], list[tuple[int | None, list[str], int, int, int]]] = defaultdict(list)
    for (s, j, rank, _), (messages, sent, runs, conversions) in merged.items():
        journeys[(s, j)].append((rank, sorted(messages), sent, runs, conversions))
    out: list[RankRow] = []
    for (s, j), ranked in sorted(journeys.items()):
        ranked.sort(key=lambda x: (x[0] is None, x[0] or 0, x[1]))
        total = sum(x[4] for x in ranked)
        base = next((x[3] for x in ranked if x[0] == 1), 0)
        cumulative = 0
        for rank, messages, sent, runs, conversions in ranked:
            cumulative += conversions if rank is not None else 0
            out.append(
                RankRow(
                    scenario=s,
                    journey=j,
                    rank=rank,
                    messages=messages,
                    sent=sent,
                    runs=runs,
                    conversions=conversions,
                    conversion_rate=conversions / sent if sent else None,
                    cumulative_conversions=cumulative if rank is not None else None,
                    cumulative_rate=cumulative / base if rank is not None and base else None,
                    marginal_rate=conversions / base if rank is not None and base else None,
                    share=conversions / total if total else None,
                )
            )
    return out


def _delay_rows(result: Iterable[Any], ranked: list[RankRow]) -> list[DelayRow]:
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in result:
        per = counts.setdefault((r.scenario, r.journey, r.message), dict.fromkeys(BUCKET_NAMES, 0))
        per[BUCKET_NAMES[int(r.bucket)]] += int(r.n)
    # In the journey's order: a message where it is first sent
    place: dict[tuple[str, str, str], int] = {}
    for i, row in enumerate(ranked):
        for m in row.messages:
            place.setdefault((row.scenario, row.journey, m), i)
    return [
        DelayRow(scenario=s, journey=j, message=m, conversions=sum(b.values()), buckets=b)
        for (s, j, m), b in sorted(counts.items(), key=lambda kv: (place.get(kv[0], len(place)), kv[0]))
    ]
