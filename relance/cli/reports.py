"""``relance reports``: per-message figures by month, as a table, JSON lines or an HTML page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from relance.cli.run import fail, reported, with_session
from relance.reports.months import PeriodError, last_complete_month, period

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from relance.reports.messages import MessageMonth

T = TypeVar("T")

reports_app = typer.Typer(help="Reports: what the messages did, month by month.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


@reports_app.callback()
def _group() -> None:
    """Reports: what the messages did, month by month."""  # a group even with a single command


def _query(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one read against the configured database (engine opened and closed around it)."""
    return with_session(work)


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def _table(rows: list[MessageMonth], title: str) -> None:
    table = Table(title=title)
    for name in ("month", "scenario", "journey", "message", "channel"):
        table.add_column(name)
    for name in ("sent", "delivered", "open", "click", "unsub.", "purchases", "revenue", "RPM"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(
            r.month,
            r.scenario,
            r.journey,
            r.message,
            r.channel,
            f"{r.sent:,}",
            f"{r.delivered:,}",
            _percent(r.open_rate),
            _percent(r.click_rate),
            _percent(r.unsubscribe_rate),
            f"{r.purchases:,}",
            f"{r.revenue:,.2f}",
            f"{r.rpm:,.2f}",
        )
    Console().print(table)


@reports_app.command("messages")
def messages(
    since: Annotated[
        str | None, typer.Option(help="First month, YYYY-MM (UTC); default: 11 months before --until.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last month, YYYY-MM (UTC); default: this month.")] = None,
    scenario: Annotated[str | None, typer.Option(help="Only the messages of this scenario.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and row.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML page with charts.")
    ] = None,
    window_days: Annotated[
        int, typer.Option(min=0, max=365, help="Attribution window: a purchase up to N days after a send.")
    ] = 7,
) -> None:
    """Per message and month: sent, delivered, open / click / unsubscribe rates, revenue, RPM."""
    with reported():  # a bad --since or --until exits 2
        chosen = period(since, until)

    from relance.reports.messages import message_report  # SQLAlchemy: not loaded for --help

    rows = _query(
        lambda session: message_report(
            session,
            since=chosen.start,
            until=chosen.end,
            scenario=scenario,
            window=timedelta(days=window_days),
        )
    )
    title = f"Messages, {chosen.since} to {chosen.until} (UTC)" + (
        f", scenario {scenario}" if scenario else ""
    )
    if as_json:
        for row in rows:
            print(json.dumps(row.model_dump(mode="json")))
    else:
        _table(rows, title)
        if not rows:
            err.print("no message was sent in that period")
    if html is not None:
        from relance.reports.html import render_page  # Jinja2: only for --html

        page = render_page(
            rows,
            since=chosen.since,
            until=chosen.until,
            scenario=scenario,
            window_days=window_days,
            generated_at=datetime.now(UTC),
        )
        html.write_text(page, encoding="utf-8")
        err.print(f"wrote {html}")


@reports_app.command("alerts")
def alerts(
    rules: Annotated[
        Path | None,
        typer.Option(
            help="YAML rules (default: $RELANCE_ALERT_RULES, else examples/reports/alerts.yaml).",
            show_default=False,
        ),
    ] = None,
    month: Annotated[
        str | None, typer.Option(help="Month of sends to check, YYYY-MM (UTC); default: last month.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line and alert.")] = False,
    window_days: Annotated[int, typer.Option(min=0, max=365, help="Attribution window for revenue.")] = 7,
) -> None:
    """KPIs below a threshold or below their trailing average; exit 1 when any alert fires (cron)."""
    # SQLAlchemy, and temporalio through the scenario loader: not loaded for --help.
    from relance.reports.alerts import check_month, default_rules_path, load_rules
    from relance.scenarios.loader import ScenarioError

    path = rules or default_rules_path()
    with reported(usage=(ScenarioError,)):
        checked = load_rules(path)
    month = month or last_complete_month()
    try:
        period(month, month)
    except PeriodError as error:
        fail(f"--month: {error.message}", code=2)  # not --since: the month was checked as both ends

    chosen = month
    fired = _query(
        lambda session: check_month(
            session, checked, chosen, window=timedelta(days=window_days), source=str(path)
        )
    )
    for alert in fired:
        if as_json:
            print(json.dumps(alert.model_dump(mode="json")))
        else:
            where = f"{alert.scenario}/{alert.journey}/{alert.message} ({alert.channel})"
            print(f"{alert.month} {where}: {alert.reason} [{alert.rule}]")
    if not fired:
        err.print(f"no alert for {month} ({len(checked)} rule{'' if len(checked) == 1 else 's'} checked)")
    raise typer.Exit(1 if fired else 0)


@reports_app.command("timing")
def timing(
    since: Annotated[
        str | None, typer.Option(help="First month, YYYY-MM (UTC); default: 11 months before --until.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last month, YYYY-MM (UTC); default: this month.")] = None,
    scenario: Annotated[str | None, typer.Option(help="Only the messages of this scenario.")] = None,
    scenarios: Annotated[
        Path | None,
        typer.Option(
            help="Directory of scenario files giving each message's rank; "
            "without it, the order of each run's first sends."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML page with charts.")
    ] = None,
    window_days: Annotated[
        int, typer.Option(min=0, max=365, help="Attribution window: a purchase up to N days after a send.")
    ] = 7,
) -> None:
    """Conversions by reminder rank and by delay after the message: how long to wait, how many reminders."""
    with reported():  # a bad --since or --until exits 2
        chosen = period(since, until)

    # SQLAlchemy, and temporalio through the scenario loader: not loaded for --help.
    from relance.reports.timing import BUCKET_NAMES, ranks_from_scenarios, timing_report
    from relance.scenarios.loader import ScenarioError, load_scenarios

    ranks = None
    if scenarios is not None:
        with reported(usage=(ScenarioError,)):
            ranks = ranks_from_scenarios(load_scenarios(scenarios))

    report = _query(
        lambda session: timing_report(
            session,
            since=chosen.start,
            until=chosen.end,
            ranks=ranks,
            scenario=scenario,
            window=timedelta(days=window_days),
        )
    )
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        where = f"{chosen.since} to {chosen.until} (UTC)" + (f", scenario {scenario}" if scenario else "")
        ranked = Table(title=f"Conversions by reminder rank, {where}")
        ranked.add_column("scenario/journey")
        ranked.add_column("rank", justify="right")
        ranked.add_column("messages")
        for column in ("sent", "runs", "conversions", "rate", "cumulative", "cum. rate", "marginal", "share"):
            ranked.add_column(column, justify="right")
        for r in report.by_rank:
            ranked.add_row(
                f"{r.scenario}/{r.journey}", "–" if r.rank is None else str(r.rank), ", ".join(r.messages),
                f"{r.sent:,}", f"{r.runs:,}", f"{r.conversions:,}", _percent(r.conversion_rate),
                "–" if r.cumulative_conversions is None else f"{r.cumulative_conversions:,}",
                _percent(r.cumulative_rate), _percent(r.marginal_rate), _percent(r.share),
            )  # fmt: skip
        Console().print(ranked)
        delays = Table(title="Conversions by delay after the credited message")
        delays.add_column("scenario/journey/message")
        for name in BUCKET_NAMES:
            delays.add_column(name, justify="right")
        delays.add_column("total", justify="right")
        for d in report.by_delay:
            delays.add_row(
                f"{d.scenario}/{d.journey}/{d.message}",
                *(f"{d.buckets[b]:,}" for b in BUCKET_NAMES),
                f"{d.conversions:,}",
            )
        Console().print(delays)
        if not report.by_rank:
            err.print("no message was sent in that period")
    if html is not None:
        from relance.reports.timing_html import render_timing_page  # Jinja2: only for --html

        page = render_timing_page(
            report,
            since=chosen.since,
            until=chosen.until,
            scenario=scenario,
            window_days=window_days,
            generated_at=datetime.now(UTC),
        )
        html.write_text(page, encoding="utf-8")
        err.print(f"wrote {html}")
