"""``GET /v1/reports/...``: the figures of ``relance reports messages``, ``alerts`` and ``timing``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from relance.reports.alerts import Alert, check_month, default_rules_path, load_rules
from relance.reports.messages import MessageMonth, message_report
from relance.reports.months import MONTH_PATTERN, Period, PeriodError, last_complete_month, period
from relance.reports.timing import TimingReport, ranks_from_scenarios, timing_report
from relance.scenarios.loader import ScenarioError

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@dataclass
class ReportQuery:
    """The query parameters of the monthly reports: the period, a scenario, the attribution window."""

    since: Annotated[
        str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default: 11 months before until")
    ] = None
    until: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default: this month")] = (
        None
    )
    scenario: Annotated[str | None, Query(max_length=64, description="only this scenario's messages")] = None
    window_days: Annotated[int, Query(ge=0, le=365, description="attribution window in days")] = 7

    def period(self) -> Period:
        return period(self.since, self.until)

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    def echo(self, chosen: Period) -> dict[str, Any]:
        """What every monthly report answers with: the period as read and the options used."""
        return {
            "since": chosen.since,
            "until": chosen.until,
            "scenario": self.scenario,
            "window_days": self.window_days,
        }


class MessagesReport(BaseModel):
    since: str = Field(description="first month, YYYY-MM (UTC)")
    until: str = Field(description="last month, YYYY-MM (UTC), included")
    scenario: str | None
    window_days: int = Field(description="attribution window, in days after a send")
    rows: list[MessageMonth]


@router.get("/messages", response_model=MessagesReport)
async def messages(
    request: Request,
    query: Annotated[ReportQuery, Depends()],
) -> MessagesReport | JSONResponse:
    """Sent, delivered, open / click / unsubscribe rates, attributed revenue and RPM (docs/reports.md)."""
    chosen = query.period()  # a PeriodError is the app's 422 naming the field
    async with request.app.state.relance.ingestor.sessions() as session:
        rows = await message_report(
            session,
            since=chosen.start,
            until=chosen.end,
            scenario=query.scenario,
            window=query.window,
        )
    return MessagesReport(rows=rows, **query.echo(chosen))


class AlertsReport(BaseModel):
    month: str = Field(description="the month of sends checked, YYYY-MM (UTC)")
    rules: str = Field(description="the rules file read")
    window_days: int
    alerts: list[Alert] = Field(description="empty when no rule fired")


@router.get("/alerts", response_model=AlertsReport)
async def alerts(
    request: Request,
    month: Annotated[
        str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default: last month")
    ] = None,
    window_days: Annotated[int, Query(ge=0, le=365, description="attribution window in days")] = 7,
) -> AlertsReport | JSONResponse:
    """The alerts of ``relance reports alerts``, with the server's rules ($RELANCE_ALERT_RULES)."""
    path = default_rules_path()  # never a path from the request: the server's own file only
    try:
        rules = load_rules(path)
    except ScenarioError as error:
        return JSONResponse(
            status_code=500,
            content={
                "error": "the alert rules cannot be loaded",
                "details": [
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                    for p in error.problems
                ],
            },
        )
    if month:
        try:
            period(month, month)
        except PeriodError as error:
            raise PeriodError("month", error.message) from None
    checked = month or last_complete_month()
    async with request.app.state.relance.ingestor.sessions() as session:
        fired = await check_month(
            session, rules, checked, window=timedelta(days=window_days), source=str(path)
        )
    return AlertsReport(month=checked, rules=str(path), window_days=window_days, alerts=fired)


class TimingAnswer(TimingReport):
    since: str = Field(description="first month, YYYY-MM (UTC)")
    until: str = Field(description="last month, YYYY-MM (UTC), included")
    scenario: str | None
    window_days: int = Field(description="attribution window, in days after a send")


@router.get("/timing", response_model=TimingAnswer)
async def timing(
    request: Request,
    query: Annotated[ReportQuery, Depends()],
    rank_by: Annotated[
        Literal["scenarios", "sends"],
        Query(description="ranks from the server's scenario files, or from each run's first sends"),
    ] = "scenarios",
) -> TimingAnswer | JSONResponse:
    """Conversions by reminder rank and by delay after the credited message (docs/reports.md)."""
    chosen = query.period()  # a PeriodError is the app's 422 naming the field
    relance = request.app.state.relance
    # a broken scenario directory raises ScenarioError, which the app answers with its problems
    ranks = ranks_from_scenarios(relance.ingestor.scenarios()) if rank_by == "scenarios" else None
    async with relance.ingestor.sessions() as session:
        report = await timing_report(
            session,
            since=chosen.start,
            until=chosen.end,
            ranks=ranks,
            scenario=query.scenario,
            window=query.window,
        )
    return TimingAnswer(**query.echo(chosen), **report.model_dump())
