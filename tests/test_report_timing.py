"""Conversions by reminder rank and by delay after the message (A-03), on the hand-counted
ledger of test_reports (see its comments for who bought after which message).

The hand count, January and February, 7-day window:
- referral/post_purchase, rank 1 (invite): sent d1 (January), d2, d3, d8, d8#resend2 = 5 (bounced
  sends are sends, as in the monthly report); runs ana, bob, cy = 3; conversions: ana's purchase
  4 days after d1, cy's an hour after the resend = 2.
- rank 2 (reminder): d4 to ana, 1 send, 1 run; ana's purchases 12 hours and exactly 7 days after
  it = 2.
- winback/lapsed (first): d7 to bob; his purchase 15 hours after it = 1. winback is not in the
  example scenario files: no rank from them, rank 1 by the order of the sends.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from relance.cli.reports import reports_app
from relance.core.db import create_engine, session_factory
from relance.core.settings import get_settings
from relance.reports.messages import message_report
from relance.reports.timing import BUCKET_NAMES, bucket_of, ranks_from_scenarios, timing_report
from relance.scenarios.loader import load_scenarios
from tests import test_unsubscribe_browser
from tests.conftest import EXAMPLES
from tests.test_reports import JAN, MAR, cli_database, reports_http, seed  # noqa: F401 (fixtures)

SCENARIOS = EXAMPLES / "scenarios"
browser = test_unsubscribe_browser.browser  # the shared Chromium fixture


# (journey, rank, messages, sent, runs, conversions, conversion_rate, cumulative, cumulative_rate,
#  marginal_rate, share)
BY_FILES = [
    ("post_purchase", 1, ["invite"], 5, 3, 2, 0.4, 2, 2 / 3, 2 / 3, 0.5),
    ("post_purchase", 2, ["reminder"], 1, 1, 2, 2.0, 4, 4 / 3, 2 / 3, 0.5),  # as much as the invite
    ("lapsed", None, ["first"], 1, 1, 1, 1.0, None, None, None, 1.0),
]
BY_SENDS = [*BY_FILES[:2], ("lapsed", 1, ["first"], 1, 1, 1, 1.0, 1, 1.0, 1.0, 1.0)]
DELAYS = [
    ("referral", "post_purchase", "invite", 2, {"0-1 h": 1, "3-7 d": 1}),  # cy: 1 h exactly; ana: 4 d
    ("referral", "post_purchase", "reminder", 2, {"1-24 h": 1, "3-7 d": 1}),  # 12 h; exactly 7 d
    ("winback", "lapsed", "first", 1, {"1-24 h": 1}),  # bob, 15 hours after
]


def rank_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    def near(x: float | None) -> float | None:
        return None if x is None else round(x, 9)

    return [
        (
            r["journey"],
            r["rank"],
            r["messages"],
            r["sent"],
            r["runs"],
            r["conversions"],
            near(r["conversion_rate"]),
            r["cumulative_conversions"],
            near(r["cumulative_rate"]),
            near(r["marginal_rate"]),
            near(r["share"]),
        )
        for r in rows
    ]


def expected_ranks(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(x, 9) if isinstance(x, float) else x for x in row) for row in rows]


def delay_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(d["scenario"], d["journey"], d["message"], d["conversions"], d["buckets"]) for d in rows]


def expected_delays(rows: list[tuple[Any, ...]] = DELAYS) -> list[tuple[Any, ...]]:
    return [(*row[:4], {b: row[4].get(b, 0) for b in BUCKET_NAMES}) for row in rows]


async def timing(url: str, **kwargs: Any) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            report = await timing_report(session, **({"since": JAN, "until": MAR} | kwargs))
            return report.model_dump()
    finally:
        await engine.dispose()


@pytest.mark.feature("A-03")
async def test_conversions_by_rank_and_delay_match_the_hand_count(database_url: str) -> None:
    await seed(database_url)
    ranks = ranks_from_scenarios(load_scenarios(SCENARIOS))
    assert ranks[("referral", "post_purchase", "invite")] == 1
    assert ranks[("referral", "post_purchase", "reminder")] == 2

    by_files = await timing(database_url, ranks=ranks)
    assert by_files["rank_by"] == "scenarios"
    assert rank_tuples(by_files["by_rank"]) == expected_ranks(BY_FILES)
    assert delay_tuples(by_files["by_delay"]) == expected_delays()

    by_sends = await timing(database_url)
    assert by_sends["rank_by"] == "sends"
    assert rank_tuples(by_sends["by_rank"]) == expected_ranks(BY_SENDS)
    assert by_sends["by_delay"] == by_files["by_delay"]

    # The same attribution as the monthly report: each message's conversions are its purchases.
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            monthly = await message_report(session, since=JAN, until=MAR)
    finally:
        await engine.dispose()
    purchases: Counter[str] = Counter()
    for row in monthly:
        purchases[row.message] += row.purchases
    assert {d["message"]: d["conversions"] for d in by_files["by_delay"]} == purchases

    # February alone: ana's reminder stays rank 2 (her run's invite went out in January); the
    # journey's base is now bob's and cy's runs.
    february = await timing(database_url, since=JAN + timedelta(days=31))
    assert rank_tuples(february["by_rank"])[:2] == expected_ranks(
        [
            ("post_purchase", 1, ["invite"], 4, 2, 1, 0.25, 1, 0.5, 0.5, 1 / 3),
            ("post_purchase", 2, ["reminder"], 1, 1, 2, 2.0, 3, 1.5, 1.0, 2 / 3),
        ]
    )
    # A 30-day window: ana's 1,000 (7 days and 1 µs after the reminder) now counts, in 7-14 d.
    wide = await timing(database_url, ranks=ranks, window=timedelta(days=30))
    assert (
        delay_tuples(wide["by_delay"])[1]
        == expected_delays(
            [("referral", "post_purchase", "reminder", 3, {"1-24 h": 1, "3-7 d": 1, "7-14 d": 1})]
        )[0]
    )
    # A one-hour window keeps cy's purchase only (exactly one hour after the resend).
    narrow = await timing(database_url, ranks=ranks, window=timedelta(hours=1))
    assert delay_tuples(narrow["by_delay"]) == expected_delays(
        [("referral", "post_purchase", "invite", 1, {"0-1 h": 1})]
    )
    winback = await timing(database_url, scenario="winback")
    assert [(r["journey"], r["rank"], r["conversions"]) for r in winback["by_rank"]] == [("lapsed", 1, 1)]


@pytest.mark.feature("A-03")
async def test_the_run_order_ranks_each_run_by_its_first_sends(sqlite_url: str) -> None:
    await seed(sqlite_url)
    # A run where the reminder went out first (the invite was skipped, then resent later): its
    # reminder is its rank 1. Ranks follow each run, not the message ids.
    from relance.models.tables.contact import Contact
    from relance.models.tables.delivery import Delivery

    engine = create_engine(sqlite_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            dee = Contact(external_id="dee", email="dee@example.com")
            session.add(dee)
            await session.flush()
            for key, message, day in (("x1", "reminder", 10), ("x2", "invite", 11)):
                session.add(
                    Delivery(
                        idempotency_key=key, workflow_id="journey:referral:post_purchase:dee",
                        scenario="referral", journey="post_purchase", message=message, channel="email",
                        contact_id=dee.id, contact_external_id="dee", status="sent",
                        at=JAN + timedelta(days=31 + day), recipient="dee@example.com", provider="ses",
                    )
                )  # fmt: skip
    finally:
        await engine.dispose()
    report = await timing(sqlite_url, scenario="referral")
    assert [(r["rank"], r["messages"], r["sent"], r["runs"]) for r in report["by_rank"]] == [
        (1, ["invite", "reminder"], 6, 4),
        (2, ["invite", "reminder"], 2, 2),
    ]


def test_delay_buckets_include_their_upper_bound() -> None:
    assert bucket_of(timedelta(hours=1)) == "0-1 h"
    assert bucket_of(timedelta(hours=1, microseconds=1)) == "1-24 h"
    assert bucket_of(timedelta(days=3)) == "1-3 d"
    assert bucket_of(timedelta(days=7)) == "3-7 d"
    assert bucket_of(timedelta(days=14)) == "7-14 d"
    assert bucket_of(timedelta(days=30)) == "14-30 d"
    assert bucket_of(timedelta(days=31)) == "over 30 d"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        reports_app, ["timing", *args], env={"COLUMNS": "220"}, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.feature("A-03")
def test_the_cli_prints_tables_or_json(cli_database: str, tmp_path: Path) -> None:  # noqa: F811
    period = ["--since", "2026-01", "--until", "2026-02"]
    code, out, _ = cli(*period, "--scenarios", str(SCENARIOS), "--json")
    assert code == 0
    report = json.loads(out)
    assert rank_tuples(report["by_rank"]) == expected_ranks(BY_FILES)
    assert delay_tuples(report["by_delay"]) == expected_delays()

    code, out, _ = cli(*period, "--json")  # no scenario files: the order of the sends
    assert code == 0 and rank_tuples(json.loads(out)["by_rank"]) == expected_ranks(BY_SENDS)

    code, out, _ = cli(*period, "--scenario", "winback", "--window-days", "1", "--json")
    assert [r["conversions"] for r in json.loads(out)["by_rank"]] == [1]  # 15 hours: within a day

    code, out, _ = cli(*period, "--scenarios", str(SCENARIOS))
    assert code == 0
    assert "Conversions by reminder rank, 2026-01 to 2026-02 (UTC)" in out
    lines = out.splitlines()
    reminder = next(line for line in lines if "reminder" in line and "post_purchase" in line)
    assert "200.0 %" in reminder and "133.3 %" in reminder
    delay = next(line for line in lines if "referral/post_purchase/invite" in line)
    assert [c.strip() for c in delay.split("│")[2:-1]] == ["1", "0", "0", "1", "0", "0", "0", "2"]

    code, _, err = cli("--since", "2026-13")
    assert code == 2 and "--since: '2026-13' is not a month" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yaml").write_text("scenario: [\n")
    code, _, err = cli(*period, "--scenarios", str(broken))
    assert code == 2 and "bad.yaml:" in err


@pytest.mark.feature("A-03")
async def test_the_http_timing(reports_http: httpx.AsyncClient) -> None:  # noqa: F811
    params = {"since": "2026-01", "until": "2026-02"}
    answer = await reports_http.get("/v1/reports/timing", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["since"], body["until"], body["scenario"], body["window_days"]) == (
        "2026-01",
        "2026-02",
        None,
        7,
    )
    assert body["rank_by"] == "scenarios"  # the server's scenario files (examples/scenarios)
    assert rank_tuples(body["by_rank"]) == expected_ranks(BY_FILES)
    assert delay_tuples(body["by_delay"]) == expected_delays()
    by_sends = await reports_http.get("/v1/reports/timing", params=params | {"rank_by": "sends"})
    assert rank_tuples(by_sends.json()["by_rank"]) == expected_ranks(BY_SENDS)
    backwards = await reports_http.get("/v1/reports/timing", params={"since": "2026-03", "until": "2026-02"})
    assert backwards.status_code == 422
    assert (await reports_http.get("/v1/reports/timing", params={"rank_by": "x"})).status_code == 422


@pytest.mark.feature("A-03")
async def test_the_html_page_renders_offline(
    browser: object, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(sqlite_url)
    monkeypatch.setenv("RELANCE_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    page_file = tmp_path / "timing.html"
    try:
        code, _, err = await asyncio.to_thread(
            cli,
            "--since",
            "2026-01",
            "--until",
            "2026-02",
            "--scenarios",
            str(SCENARIOS),
            "--html",
            str(page_file),
        )
    finally:
        get_settings.cache_clear()
    assert code == 0 and f"wrote {page_file}" in err

    page = await browser.new_page()  # type: ignore[attr-defined]
    problems: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(page_file.as_uri())
    assert await page.title() == "Timing report"

    def cells(table: str) -> str:
        return f"#{table} tbody tr"

    script = "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    ranks = await page.eval_on_selector_all(cells("by-rank"), script)
    assert ranks == [
        ["referral", "post_purchase", "1", "invite", "5", "3", "2", "40.0 %", "2", "66.7 %", "66.7 %", "50.0 %"],
        ["referral", "post_purchase", "2", "reminder", "1", "1", "2", "200.0 %", "4", "133.3 %", "66.7 %", "50.0 %"],
        ["winback", "lapsed", "–", "first", "1", "1", "1", "100.0 %", "–", "–", "–", "100.0 %"],
    ]  # fmt: skip
    delays = await page.eval_on_selector_all(cells("by-delay"), script)
    assert delays[1] == ["referral", "post_purchase", "reminder", "0", "1", "0", "1", "0", "0", "0", "2"]

    charts = page.locator("svg.chart")
    labels = [await charts.nth(i).get_attribute("aria-label") for i in range(await charts.count())]
    assert labels == [
        "Conversions by reminder rank: referral / post_purchase",
        "Conversions by delay after the message: referral / post_purchase",
        "Conversions by delay after the message: winback / lapsed",  # no rank: no rank chart
    ]
    for i in range(len(labels)):
        box = await charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    tips = await page.eval_on_selector_all(
        "svg.chart rect.bar", "rects => rects.map(r => [r.textContent, r.getBBox().height])"
    )
    heights = dict(tips)
    # Rank bars in proportion to the conversions: 2 and 2; delay bars stacked by message.
    invite = heights["rank 1 (invite): 2 conversions of 5 sends (40.0 %)"]
    assert invite > 0 and heights["rank 2 (reminder): 2 conversions of 1 sends (200.0 %)"] == invite
    assert heights["invite, 0-1 h: 1 conversion"] > 0 and heights["invite, 1-24 h: 0 conversions"] == 0
    assert heights["reminder, 3-7 d: 1 conversion"] == pytest.approx(heights["invite, 3-7 d: 1 conversion"])
    assert problems == []
    assert all(url.startswith("file://") for url in requested), requested  # nothing from the network
    await page.close()
