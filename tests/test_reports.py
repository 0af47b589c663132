"""Per-message monthly reports (A-01) in the terminal, as JSON, over HTTP and as an HTML page (A-05).

The ledger below is small enough to count by hand; the expected figures are that count,
written out, and every database must give exactly them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from relance.api.app import create_app
from relance.bounces.service import Feedback, Kind, record
from relance.cli.reports import reports_app
from relance.core.db import create_engine, session_factory
from relance.core.settings import Settings, get_settings
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.models.tables.event import Event
from relance.reports.messages import message_report
from relance.starter.facade import Relance
from tests import test_unsubscribe_browser

JAN, FEB = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
PARIS_WINTER = timezone(timedelta(hours=1))


def _at(day: int, hour: int = 0, minute: int = 0, micro: int = 0, month: int = 2) -> datetime:
    return datetime(2026, month, day, hour, minute, 0, micro, tzinfo=UTC)


# key -> (contact, scenario, journey, message, status, at); email for all
LEDGER: dict[str, tuple[str, str, str, str, str, datetime]] = {
    # 00:59:59.999999 on 1 February in Paris is still January in UTC
    "d1": ("ana", "referral", "post_purchase", "invite", "sent",
           datetime(2026, 2, 1, 0, 59, 59, 999999, tzinfo=PARIS_WINTER)),
    "d2": ("bob", "referral", "post_purchase", "invite", "sent", FEB),  # first instant of February
    "d3": ("cy", "referral", "post_purchase", "invite", "sent", _at(3, 10)),  # hard bounce below
    "d8": ("cy", "referral", "post_purchase", "invite", "sent", _at(4, 0)),  # soft bounce below
    "d8#resend2": ("cy", "referral", "post_purchase", "invite", "sent", _at(4, 12)),  # delivered
    "d6": ("cy", "referral", "post_purchase", "invite", "skipped", _at(3, 11)),  # never sent
    "d4": ("ana", "referral", "post_purchase", "reminder", "sent", _at(7, 12)),
    "d7": ("bob", "winback", "lapsed", "first", "sent", _at(5, 9)),
    "d9": ("ana", "referral", "post_purchase", "invite", "sent", MAR),  # after the period
}  # fmt: skip

# key -> kinds recorded by the tracking links and the unsubscribe page
ENGAGEMENT: dict[str, list[str]] = {
    "d1": ["open", "open", "click"],  # opened twice: one opened message
    "d2": ["open", "click", "click", "unsubscribe"],
    "d3": ["open"],  # a stray open of a message that bounced: not counted
    "d4": ["open", "complaint"],
    "d8#resend2": ["open"],
}

# (contact, type, at, properties)
PURCHASES: list[tuple[str, str, datetime, dict[str, Any]]] = [
    ("ana", "purchase", _at(5), {"amount": 100}),  # d1 (4 days before) -> January invite
    ("ana", "purchase", _at(8), {"amount": 40}),  # d4 the day before; d1 is 7 days + 1 µs old
    ("ana", "purchase", _at(14, 12), {"amount": 10}),  # exactly 7 days after d4: still d4's
    ("ana", "purchase", _at(14, 12, micro=1), {"amount": 1000}),  # 1 µs too late: nobody's
    ("bob", "purchase", _at(6), {"amount": 25}),  # d2 and d7 both in the window: d7, the last, only
    ("bob", "purchase", FEB, {"amount": 7}),  # at the very instant of d2: not after it
    ("cy", "purchase", _at(4, 13), {"amount": 60.5}),  # d3, d8 bounced: the resend gets it
    ("cy", "purchase", _at(4, 14), {"amount": "12"}),  # amount as text: not revenue
    ("ana", "refund", _at(8, 1), {"amount": 5}),  # not a purchase
    ("ana", "purchase", _at(2, month=3), {"amount": 5}),  # d9's, after the period
]

# The hand count, February invite: sent d2, d3, d8, d8#resend2 = 4; bounced d3, d8 = 2;
# delivered 2; opened d2, d8#resend2 = 2; clicked d2 = 1; unsubscribed d2 = 1; revenue 60.5.
INVITE_JAN = {
    "scenario": "referral", "journey": "post_purchase", "message": "invite", "channel": "email",
    "month": "2026-01", "sent": 1, "bounced": 0, "delivered": 1, "opened": 1, "clicked": 1,
    "unsubscribed": 0, "complained": 0, "purchases": 1, "revenue": 100.0,
    "open_rate": 1.0, "click_rate": 1.0, "unsubscribe_rate": 0.0, "rpm": 100000.0,
}  # fmt: skip
INVITE_FEB = {
    "scenario": "referral", "journey": "post_purchase", "message": "invite", "channel": "email",
    "month": "2026-02", "sent": 4, "bounced": 2, "delivered": 2, "opened": 2, "clicked": 1,
    "unsubscribed": 1, "complained": 0, "purchases": 1, "revenue": 60.5,
    "open_rate": 1.0, "click_rate": 0.5, "unsubscribe_rate": 0.5, "rpm": 15125.0,
}  # fmt: skip
REMINDER_FEB = {
    "scenario": "referral", "journey": "post_purchase", "message": "reminder", "channel": "email",
    "month": "2026-02", "sent": 1, "bounced": 0, "delivered": 1, "opened": 1, "clicked": 0,
    "unsubscribed": 0, "complained": 1, "purchases": 2, "revenue": 50.0,
    "open_rate": 1.0, "click_rate": 0.0, "unsubscribe_rate": 0.0, "rpm": 50000.0,
}  # fmt: skip
WINBACK_FEB = {
    "scenario": "winback", "journey": "lapsed", "message": "first", "channel": "email",
    "month": "2026-02", "sent": 1, "bounced": 0, "delivered": 1, "opened": 0, "clicked": 0,
    "unsubscribed": 0, "complained": 0, "purchases": 1, "revenue": 25.0,
    "open_rate": 0.0, "click_rate": 0.0, "unsubscribe_rate": 0.0, "rpm": 25000.0,
}  # fmt: skip
EXPECTED = [INVITE_JAN, INVITE_FEB, REMINDER_FEB, WINBACK_FEB]


async def seed(url: str) -> None:
    """The ledger above, bounces through the notification handler, the rest as the API writes it."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            contacts = {n: Contact(external_id=n, email=f"{n}@example.com") for n in ("ana", "bob", "cy")}
            session.add_all(contacts.values())
            await session.flush()
            for key, (who, scenario, journey, message, status, at) in LEDGER.items():
                session.add(
                    Delivery(
                        idempotency_key=key,
                        workflow_id=f"journey:{scenario}:{journey}:{who}",
                        scenario=scenario,
                        journey=journey,
                        message=message,
                        channel="email",
                        contact_id=contacts[who].id,
                        contact_external_id=who,
                        status=status,
                        at=at,
                        recipient=f"{who}@example.com",
                        provider="ses",
                        provider_message_id=f"ses-{key}",
                    )
                )
            for key, kinds in ENGAGEMENT.items():
                for i, kind in enumerate(kinds):
                    at = LEDGER[key][5] + timedelta(hours=1, minutes=i)
                    session.add(DeliveryEvent(delivery_key=key, kind=kind, at=at))
            for n, (who, type_, at, properties) in enumerate(PURCHASES):
                session.add(
                    Event(
                        key=f"e{n}",
                        type=type_,
                        contact_id=contacts[who].id,
                        occurred_at=at,
                        properties=properties,
                    )
                )
        for key, kind in (("d3", Kind.HARD_BOUNCE), ("d8", Kind.SOFT_BOUNCE)):
            at = LEDGER[key][5] + timedelta(minutes=2)
            feedback = Feedback(kind, f"ses-{key}", ("cy@example.com",), at, "bounce")
            await record(sessions, feedback, f"sns-{key}")
            await record(sessions, feedback, f"sns-{key}")  # SNS repeats itself: a new id, same bounce
    finally:
        await engine.dispose()


async def report(url: str, **kwargs: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            rows = await message_report(session, **({"since": JAN, "until": MAR} | kwargs))
        return [r.model_dump() for r in rows]
    finally:
        await engine.dispose()


@pytest.mark.feature("A-01")
async def test_figures_per_message_and_month_match_the_hand_count(database_url: str) -> None:
    await seed(database_url)
    assert await report(database_url) == EXPECTED

    # The scenario filter keeps bob's purchase with the winback message (it was the last touch).
    assert await report(database_url, scenario="referral") == [INVITE_JAN, INVITE_FEB, REMINDER_FEB]
    assert await report(database_url, since=FEB, until=MAR, scenario="winback") == [WINBACK_FEB]

    # A one-day window: only purchases within a day of their last message count.
    rows = await report(database_url, window=timedelta(days=1))
    one_day = {(r["month"], r["message"]): (r["purchases"], r["revenue"]) for r in rows}
    assert one_day == {
        ("2026-01", "invite"): (0, 0.0),  # 4 days
        ("2026-02", "invite"): (1, 60.5),  # 1 hour
        ("2026-02", "reminder"): (1, 40.0),  # 12 hours; the one 7 days later is out
        ("2026-02", "first"): (1, 25.0),  # 15 hours
    }
    # March: d9 and the purchase after it, alone.
    march = await report(database_url, since=MAR, until=MAR + timedelta(days=31))
    assert [(r["month"], r["sent"], r["purchases"], r["revenue"]) for r in march] == [("2026-03", 1, 1, 5.0)]


@pytest.mark.feature("A-01")
def test_periods_must_be_whole_aware_months(sqlite_url: str) -> None:
    async def naive() -> None:
        engine = create_engine(sqlite_url)
        try:
            async with session_factory(engine)() as session:
                await message_report(session, since=datetime(2026, 1, 1), until=MAR)
        finally:
            await engine.dispose()

    with pytest.raises(ValueError, match="timezone-aware"):
        asyncio.run(naive())


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    asyncio.run(seed(database_url))
    monkeypatch.setenv("RELANCE_DATABASE_URL", database_url)
    get_settings.cache_clear()  # the CLI reads the settings once per process
    yield database_url
    get_settings.cache_clear()


def cli(*args: str) -> tuple[int, str, str]:
    wide = {"COLUMNS": "200"}  # the whole table on one line per row
    result = CliRunner().invoke(reports_app, ["messages", *args], env=wide, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.feature("A-01")
@pytest.mark.feature("A-05")
def test_the_cli_prints_a_table_or_json_lines(cli_database: str) -> None:
    status, out, _ = cli("--since", "2026-01", "--until", "2026-02", "--json")
    assert status == 0
    assert [json.loads(line) for line in out.splitlines()] == EXPECTED

    status, out, _ = cli("--since", "2026-01", "--until", "2026-02", "--scenario", "winback")
    assert status == 0
    assert "Messages, 2026-01 to 2026-02 (UTC), scenario winback" in out
    assert "first" in out and "25.00" in out and "25,000.00" in out and "invite" not in out

    status, out, _ = cli("--since", "2026-02", "--until", "2026-02", "--window-days", "1", "--json")
    assert [(r["message"], r["revenue"]) for r in map(json.loads, out.splitlines())] == [
        ("invite", 60.5),
        ("reminder", 40.0),
        ("first", 25.0),
    ]

    status, _, err = cli("--since", "2026-13")
    assert status == 2 and "--since: '2026-13' is not a month: write it YYYY-MM" in err
    status, _, err = cli("--since", "2026-03", "--until", "2026-02")
    assert status == 2 and "--since: 2026-03 is after until (2026-02)" in err


@pytest_asyncio.fixture(loop_scope="session")
async def reports_http(time_env: WorkflowEnvironment, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(database_url)
    engine = create_engine(database_url)
    settings = Settings(database_url=database_url)
    app = create_app(settings, Relance(time_env.client, engine, settings))  # the app as shipped
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            yield client
    finally:
        await engine.dispose()


@pytest.mark.feature("A-01")
async def test_the_http_report_gives_the_same_rows(reports_http: httpx.AsyncClient) -> None:
    answer = await reports_http.get("/v1/reports/messages", params={"since": "2026-01", "until": "2026-02"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "since": "2026-01",
        "until": "2026-02",
        "scenario": None,
        "window_days": 7,
        "rows": EXPECTED,
    }
    winback = await reports_http.get(
        "/v1/reports/messages", params={"since": "2026-02", "until": "2026-02", "scenario": "winback"}
    )
    assert winback.json()["rows"] == [WINBACK_FEB]
    backwards = await reports_http.get(
        "/v1/reports/messages", params={"since": "2026-03", "until": "2026-02"}
    )
    assert backwards.status_code == 422
    assert backwards.json()["details"] == [{"field": "since", "message": "2026-03 is after until (2026-02)"}]
    assert (await reports_http.get("/v1/reports/messages", params={"since": "2026-1"})).status_code == 422
    for path in ("/v1/reports/messages", "/v1/reports/timing"):
        for params in ({"since": "0000-01"}, {"until": "9999-12"}):
            far = await reports_http.get(path, params=params)
            assert far.status_code == 422, (path, params, far.text)
            assert far.json()["error"] == "the report period is not valid"
            assert far.json()["details"][0]["field"] == next(iter(params))
    year_zero = await reports_http.get("/v1/reports/alerts", params={"month": "0000-01"})
    assert year_zero.status_code == 422 and year_zero.json()["details"][0]["field"] == "month"


browser = test_unsubscribe_browser.browser  # the Chromium fixture of the unsubscribe page's test


@pytest.mark.feature("A-05")
async def test_the_html_page_renders_its_table_and_charts_offline(
    browser: object, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(sqlite_url)
    monkeypatch.setenv("RELANCE_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    page_file = tmp_path / "report.html"
    try:
        # The command runs its own event loop: off this one.
        status, _, err = await asyncio.to_thread(
            cli, "--since", "2026-01", "--until", "2026-02", "--html", str(page_file)
        )
    finally:
        get_settings.cache_clear()
    assert status == 0 and f"wrote {page_file}" in err

    page = await browser.new_page()  # type: ignore[attr-defined]
    problems: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(page_file.as_uri())
    assert await page.title() == "Message report"

    cells = await page.eval_on_selector_all(
        "#report tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    assert [c[:6] for c in cells] == [
        ["2026-01", "referral", "post_purchase", "invite", "email", "1"],
        ["2026-02", "referral", "post_purchase", "invite", "email", "4"],
        ["2026-02", "referral", "post_purchase", "reminder", "email", "1"],
        ["2026-02", "winback", "lapsed", "first", "email", "1"],
    ]
    assert cells[1][6:] == ["2", "100.0 %", "50.0 %", "50.0 %", "1", "60.50", "15,125.00"]

    charts = page.locator("svg.chart")
    assert await charts.count() == 3
    labels = [await charts.nth(i).get_attribute("aria-label") for i in range(3)]
    assert labels == [
        "Sends per month: delivered and bounced",
        "Open and click rates per message",
        "Attributed revenue per message",
    ]
    for i in range(3):
        box = await charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100  # drawn, not collapsed
    # Bars in proportion: February 4 delivered (2 invites, a reminder, a winback) and 2 bounced,
    # January 1 delivered.
    tips = await page.eval_on_selector_all(
        "svg.chart rect.bar",
        "rects => rects.map(r => [r.textContent, r.getBBox().height, r.getBBox().width])",
    )
    heights = {tip: h for tip, h, _ in tips}
    january = heights["2026-01: 1 delivered"]
    assert january > 0 and heights["2026-01: 0 bounced"] == 0
    assert heights["2026-02: 4 delivered"] == pytest.approx(4 * january)
    assert heights["2026-02: 2 bounced"] == pytest.approx(2 * january)
    widths = {tip: w for tip, _, w in tips}
    # invite, both months: 100 + 60.50 from 5 sends
    assert widths["160.50 (2 purchases, RPM 32,100.00)"] > widths["25.00 (1 purchase, RPM 25,000.00)"] > 0
    assert problems == []
    assert all(url.startswith("file://") for url in requested), requested  # nothing from the network
    await page.close()
