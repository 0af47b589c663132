"""The club software's campaign catalogue (seed 002) end to end: events posted to the HTTP API as a
club's backend would, journeys run on the time-skipping server, the ledger and the captured
messages read back (examples/club/scenarios, M-01 … M-08)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.channels.base import OutgoingMessage
from relance.models.tables.delivery import Delivery
from relance.models.tables.journey import JourneyRun
from relance.simulation.run import time_skipping
from tests.conftest import EXAMPLES, Stack, api_client, running_stack

CLUB = EXAMPLES / "club" / "scenarios"
PARIS = ZoneInfo("Europe/Paris")
PLANNING = (
    "booking_confirmation",
    "waitlist",
    "waitlist_to_booked",
    "waitlist_cancellation",
    "booking_cancellation",
)
Ledger = dict[tuple[str, str], list[Delivery]]


def member(external_id: str = "mia", marketing: bool = True, **fields: Any) -> dict[str, Any]:
    return {"external_id": external_id, "email": f"{external_id}@example.com", "phone": "+33611223344",
            "first_name": external_id.title(), "time_zone": "Europe/Paris",
            "consents": {"email": {"marketing": marketing}, "sms": {"marketing": marketing}}, **fields}  # fmt: skip


def event(type: str, at: datetime, n: object = 0, contact: dict[str, Any] | None = None, **properties: Any):
    return {"id": f"{type}-{n}", "type": type, "occurred_at": at.isoformat(),
            "contact": contact or member(), "properties": properties}  # fmt: skip


@asynccontextmanager
async def club(env: WorkflowEnvironment, url: str) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    async with running_stack(env.client, url, scenarios_dir=CLUB) as stack, api_client(stack) as http:
        yield stack, http


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, str]:
    """Journey → status (started, duplicate, …) for the event."""
    answer = await http.post("/v1/events", json=body)
    assert answer.status_code == 202, answer.text
    return {j["journey"]: j["status"] for j in answer.json()["journeys"]}


async def finish(stack: Stack) -> tuple[Ledger, list[OutgoingMessage]]:
    """Let every journey run to its end (status changes included), then read the ledger."""
    async with stack.sessions() as session:
        ids = list(await session.scalars(select(JourneyRun.workflow_id)))
    async with time_skipping(stack.client):
        for wf_id in ids:
            await stack.client.get_workflow_handle(wf_id).result()
    ledger: Ledger = {}
    async with stack.sessions() as session:
        for row in await session.scalars(select(Delivery).order_by(Delivery.at, Delivery.id)):
            ledger.setdefault((row.journey, row.message), []).append(row)
    return ledger, list(stack.channel.messages)  # type: ignore[attr-defined]


def by_ref(rows: list[Delivery]) -> dict[str, Delivery]:
    return {row.workflow_id.rsplit(":", 1)[1]: row for row in rows}


def local(row: Delivery) -> datetime:
    return row.at.astimezone(PARIS).replace(microsecond=0)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def near(row: Delivery, when: datetime) -> bool:
    """Sent at once: the workflow clock runs on while the events are posted."""
    return abs(row.at - when) < timedelta(seconds=10)


def text_to(sent: list[OutgoingMessage], subject: str) -> str:
    [message] = [m for m in sent if m.subject == subject]
    return message.text


@pytest.mark.feature("M-01")
async def test_actions_go_at_once_even_at_night_and_without_marketing_consent(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    night = at(t0.astimezone(PARIS).date() + timedelta(days=1), 23)
    await time_env.sleep(night - t0)
    refused = member(marketing=False)  # actions are transactional: no opt-in needed
    async with club(time_env, sqlite_url) as (stack, http):
        await post(http, event("credentials_requested", night, contact=refused, login="mia.b",
                               login_url="https://club.example/login", reset_url="https://club.example/pw/abc"))  # fmt: skip
        assert await post(http, event("esignature_requested", night, contact=refused, code="482913")) == {
            "esignature_code": "started"
        }
        by_mail = event("esignature_requested", night, 2, refused, code="771204", sign_by="email")
        assert await post(http, by_mail) == {"esignature_code_email": "started"}  # no SMS as well
        await post(http, event("subscription_suspended", night, contact=refused, until="2027-02-01"))
        await post(http, event("mandate_cancelled", night, contact=refused))
        await post(
            http, event("contract_signed", night, contact=refused, contract_url="https://club.example/c/7")
        )
        await post(http, event("subscription_terminated", night, contact=refused, ends_on="2027-06-30"))
        ledger, sent = await finish(stack)

    for journey in ("credentials_resend", "esignature_code_email", "suspension_confirmation",
                    "mandate_cancellation", "contract_sending", "termination_confirmation"):  # fmt: skip
        [row] = next(rows for (j, _), rows in ledger.items() if j == journey)
        assert (row.status, row.channel, near(row, night)) == ("sent", "email", True), journey
    # 23:00 is outside the SMS hours, yet the code is not held to the morning.
    [code] = ledger[("esignature_code", "code")]
    assert (code.status, code.channel, near(code, night), local(code).hour) == ("sent", "sms", True, 23)
    assert [m.text for m in sent if m.channel == "sms"] == [
        "Your signature code: 482913. It expires in 10 minutes."
    ]
    credentials = text_to(sent, "Your member area credentials")
    assert "Login: mia.b" in credentials and "Sign in at: https://club.example/login" in credentials
    assert "Set a new password: https://club.example/pw/abc" in credentials
    assert "enter this code: 771204" in text_to(sent, "Your signature code: 771204")
    assert "https://club.example/c/7" in text_to(sent, "Your contract")


@pytest.mark.feature("M-02")
async def test_subscription_and_pack_ending_are_timed_from_their_dates(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    today = t0.astimezone(PARIS).date()
    ends, renewed_end = today + timedelta(days=40), today + timedelta(days=70)
    async with club(time_env, sqlite_url) as (stack, http):
        await post(http, event("subscription_updated", t0, 1, subscription_id="S-1", ends_on=f"{ends}"))
        await post(http, event("subscription_updated", t0, 2, subscription_id="S-2", ends_on=f"{ends}"))
        # S-2 is renewed early: its journey stops, the new term is timed from its own end.
        await post(http, event("subscription_renewed", t0 + timedelta(days=1), 2, subscription_id="S-2"))
        await post(http, event("subscription_updated", t0 + timedelta(days=1), 3, subscription_id="S-3",
                               ends_on=f"{renewed_end}"))  # fmt: skip
        await post(
            http, event("pack_bought", t0, 1, pack_id="P-1", expires_on=f"{today + timedelta(days=20)}")
        )
        # A pack bought 3 days before its end: "7 days before" has passed, nothing is sent late.
        await post(
            http, event("pack_bought", t0, 2, pack_id="P-2", expires_on=f"{today + timedelta(days=3)}")
        )
        ledger, sent = await finish(stack)

    before = by_ref(ledger[("subscription_ending", "before_end")])
    after = by_ref(ledger[("subscription_ending", "after_end")])
    assert (before["S-1"].status, local(before["S-1"])) == ("sent", at(ends - timedelta(days=15), 10))
    assert (after["S-1"].status, local(after["S-1"])) == ("sent", at(ends + timedelta(days=7), 10))
    assert before["S-2"].status == after["S-2"].status == "skipped"
    assert before["S-2"].reason == "exit event 'subscription_renewed'"
    assert (before["S-3"].status, local(before["S-3"])) == ("sent", at(renewed_end - timedelta(days=15), 10))
    assert any(f"your subscription ends on {renewed_end}" in m.text for m in sent)
    assert any(f"ended on {ends}" in m.text and "/u/" in m.text for m in sent)  # marketing: unsubscribe link
    packs = by_ref(ledger[("pack_ending", "before_expiry")])
    assert (packs["P-1"].status, local(packs["P-1"])) == ("sent", at(today + timedelta(days=13), 10))
    assert packs["P-2"].status == "skipped" and "before the trigger" in (packs["P-2"].reason or "")


@pytest.mark.feature("M-03")
async def test_birthday_on_the_day_and_thirty_days_after_a_subscription_started(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    async with club(time_env, sqlite_url) as (stack, http):
        await post(http, event("birthday", t0, "mia-2026"))
        await post(http, event("birthday", t0, "leo-2026", member("leo", marketing=False)))
        await post(http, event("subscription_started", t0, 1, subscription_id="S-1"))
        await post(http, event("subscription_started", t0, 2, subscription_id="S-2"))
        # Only S-2 ends before its month is up: S-1's check-in still goes.
        await post(http, event("subscription_terminated", t0 + timedelta(days=3), subscription_id="S-2",
                               ends_on=f"{(t0 + timedelta(days=10)).date()}"))  # fmt: skip
        ledger, sent = await finish(stack)

    wishes = {row.contact_external_id: row for row in ledger[("birthday", "wishes")]}
    assert wishes["mia"].status == "sent" and near(wishes["mia"], t0)
    assert wishes["leo"].status == "skipped"  # a marketing message: Leo has not opted in
    assert [m.to for m in sent if m.subject == "Happy birthday!"] == ["mia@example.com"]
    checks = by_ref(ledger[("one_month", "check_in")])
    assert checks["S-1"].status == "sent" and near(checks["S-1"], t0 + timedelta(days=30))
    assert checks["S-2"].status == "skipped" and "subscription_terminated" in (checks["S-2"].reason or "")


@pytest.mark.feature("M-05")
async def test_booking_waiting_list_and_cancellation_messages(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    day = t0.astimezone(PARIS).date() + timedelta(days=5)
    yoga, boxing = at(day, 16, 30), at(day, 18, 30)
    async with club(time_env, sqlite_url) as (stack, http):
        booked = event("booking", t0, "B-1", booking_id="B-1", activity="yoga", starts_at=yoga.isoformat())
        assert await post(http, booked) == {"booking_confirmation": "started", "booking_reminders": "started"}
        assert (await http.post("/v1/events", json=booked)).json()["duplicate"] is True  # a retry: once
        await post(http, event("booking", t0, "B-2", booking_id="B-2", activity="boxing",
                               starts_at=boxing.isoformat()))  # fmt: skip
        await post(http, event("waitlist_joined", t0, "B-3", booking_id="B-3", activity="pilates"))
        await post(http, event("waitlist_promoted", t0 + timedelta(hours=2), "B-3", booking_id="B-3",
                               activity="pilates"))  # fmt: skip
        await post(http, event("waitlist_joined", t0, "B-4", booking_id="B-4", activity="zumba"))
        await post(http, event("waitlist_left", t0 + timedelta(hours=1), "B-4", booking_id="B-4",
                               activity="zumba"))  # fmt: skip
        await post(http, event("booking_cancelled", t0 + timedelta(hours=3), "B-1", booking_id="B-1",
                               activity="yoga", starts_at=yoga.isoformat()))  # fmt: skip
        ledger, sent = await finish(stack)

    statuses = {j: [r.status for r in rows] for (j, _), rows in ledger.items()}
    assert {j: statuses[j] for j in PLANNING} == {
        "booking_confirmation": ["sent", "sent"],  # B-1 and B-2; the retry is not a third
        "waitlist": ["sent", "sent"],  # B-3 and B-4
        "waitlist_to_booked": ["sent"],
        "waitlist_cancellation": ["sent"],
        "booking_cancellation": ["sent"],
    }
    assert any(f"your yoga on {day} at 16:30 is booked." in m.text for m in sent)
    assert any(f"yoga on {day} at 16:30 is cancelled" in m.text for m in sent)
    # B-1's cancellation stops its reminders only: B-2's go the evening before and on the hour.
    reminders = {(r.workflow_id.rsplit(":", 1)[1], r.message): r for (j, _), rows in ledger.items()
                 if j == "booking_reminders" for r in rows}  # fmt: skip
    assert {reminders[("B-1", m)].status for m in ("day_before", "hour_before")} == {"skipped"}
    assert local(reminders[("B-2", "day_before")]) == at(day - timedelta(days=1), 18)
    assert local(reminders[("B-2", "hour_before")]) == at(day, 17)  # 2 hours before 18:30, on the hour
    assert {reminders[("B-2", m)].status for m in ("day_before", "hour_before")} == {"sent"}


@pytest.mark.feature("M-06")
async def test_status_changes_new_profiles_and_expiring_certificate_and_card(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    today = t0.astimezone(PARIS).date()
    prospect = member(attributes={"status": "prospect"})
    async with club(time_env, sqlite_url) as (stack, http):
        created = event("profile_created", t0, contact=prospect, password_url="https://club.example/pw/new")
        assert await post(http, created) == {"since_profile_created": "started"}
        # A visit whose contact says 'client': the prospect became a client.
        await post(
            http, event("visit", t0 + timedelta(hours=1), contact=member(attributes={"status": "client"}))
        )
        # Another member, client → former client: neither became_client nor the prospect journey.
        await post(http, event("visit", t0, "ida-1", member("ida", attributes={"status": "client"})))
        await post(http, event("visit", t0, "ida-2", member("ida", attributes={"status": "former_client"})))
        await post(http, event("certificate_recorded", t0, expires_on=f"{today + timedelta(days=60)}"))
        await post(http, event("card_recorded", t0, 1, expires_on=f"{today + timedelta(days=45)}"))
        # Recorded 10 days before its end: "30 days before" has passed already.
        await post(http, event("card_recorded", t0, 2, expires_on=f"{today + timedelta(days=10)}"))
        ledger, sent = await finish(stack)

    runs = {(r.contact_external_id, j) for (j, _), rows in ledger.items() for r in rows}
    assert {j for c, j in runs if c == "ida"} == {"former_client"}
    [trial] = ledger[("became_prospect", "trial")]  # the new profile was created as a prospect
    assert (trial.status, trial.contact_external_id) == ("sent", "mia")
    [welcome] = ledger[("became_client", "welcome")]
    assert welcome.status == "sent" and near(welcome, t0 + timedelta(hours=1))
    [area] = ledger[("since_profile_created", "member_area")]
    assert area.status == "sent" and near(area, t0 + timedelta(days=2))
    assert "Choose your password: https://club.example/pw/new" in text_to(sent, "Your member area is waiting")
    [certificate] = ledger[("certificate_expiring", "reminder")]
    assert (certificate.status, local(certificate)) == ("sent", at(today + timedelta(days=30), 10))
    sent_card, late_card = sorted(ledger[("card_expiring", "reminder")], key=lambda r: r.status)
    assert (sent_card.status, local(sent_card)) == ("sent", at(today + timedelta(days=15), 10))
    assert late_card.status == "skipped" and "before the trigger" in (late_card.reason or "")


@pytest.mark.feature("M-07")
async def test_no_shows_each_and_three_in_a_calendar_month(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    first = t0.astimezone(PARIS).date().replace(day=1) + timedelta(days=40)
    month, next_month = first.replace(day=1), (first.replace(day=1) + timedelta(days=40)).replace(day=1)
    async with club(time_env, sqlite_url) as (stack, http):
        answers = [
            await post(http, event("no_show", at(d, 12), f"B-{d}", booking_id=f"B-{d}", activity="yoga"))
            for d in (month + timedelta(days=n) for n in (0, 4, 8, 12))
        ]
        # Two in the next month: below the threshold, no warning.
        for d in (next_month, next_month + timedelta(days=1)):
            answers.append(await post(http, event("no_show", at(d, 12), f"C-{d}", booking_id=f"C-{d}")))
        ledger, sent = await finish(stack)

    assert [a.get("no_shows_in_a_month") for a in answers] == [None, None, "started", "duplicate", None, None]
    assert [r.status for r in ledger[("no_show", "notice")]] == ["sent"] * 6
    [warning] = ledger[("no_shows_in_a_month", "warning")]
    assert warning.status == "sent" and local(warning) == at(month + timedelta(days=8), 12)
    assert warning.workflow_id.endswith(f"month%3A{month:%Y-%m}")
    assert sum(m.subject == "Missed sessions this month" for m in sent) == 1


@pytest.mark.feature("M-08")
async def test_a_rejected_direct_debit_links_to_the_member_area(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    french = member("lea", marketing=False, locale="fr")
    rejected = {"payment_id": "D-1", "amount": 39.9, "settle_url": "https://club.example/pay/D-1"}
    async with club(time_env, sqlite_url) as (stack, http):
        assert await post(http, event("payment_rejected", t0, 1, **rejected)) == {
            "direct_debit_rejected": "started"
        }
        # The same rejection sent again under another event id: one message per payment.
        assert await post(http, event("payment_rejected", t0, 2, **rejected)) == {
            "direct_debit_rejected": "duplicate"
        }
        await post(http, event("payment_rejected", t0, 3, french, payment_id="D-2", amount=25,
                               settle_url="https://club.example/pay/D-2"))  # fmt: skip
        ledger, sent = await finish(stack)

    rows = by_ref(ledger[("direct_debit_rejected", "settle")])
    assert {ref: r.status for ref, r in rows.items()} == {
        "D-1": "sent",
        "D-2": "sent",
    }  # Léa: no opt-in needed
    english = text_to(sent, "Your direct debit was rejected")
    assert "Settle it in your member area: https://club.example/pay/D-1" in english
    [lea] = [m for m in sent if m.to == "lea@example.com"]
    assert "Régularisez-le dans votre espace membre : https://club.example/pay/D-2" in lea.text
