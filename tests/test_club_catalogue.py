"""The club software's campaign catalogue (seed 002) as example journeys, each driven by the
events a club's backend sends (M-01 … M-08): examples/club/scenarios/."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.channels.base import OutgoingMessage
from relance.models.tables.delivery import Delivery
from relance.simulation.run import time_skipping
from tests.conftest import EXAMPLES, running_stack

CLUB = EXAMPLES / "club" / "scenarios"
PARIS = ZoneInfo("Europe/Paris")
MEMBER = {"external_id": "mia", "email": "mia@example.com", "phone": "+33611223344", "first_name": "Mia",
          "time_zone": "Europe/Paris", "consents": {"email": {"marketing": True}}}  # fmt: skip
Ledger = dict[tuple[str, str], list[Delivery]]


def event(type: str, at: datetime, n: int = 0, **properties: Any) -> dict[str, Any]:
    return {"id": f"{type}-{n}-{at.timestamp()}", "type": type, "occurred_at": at.isoformat(),
            "contact": MEMBER, "properties": properties}  # fmt: skip


async def play(
    env: WorkflowEnvironment, url: str, events: list[dict[str, Any]]
) -> tuple[Ledger, list[OutgoingMessage]]:
    """Send the events, let every journey run to its end, and return the ledger by (journey, message)."""
    async with running_stack(env.client, url, scenarios_dir=CLUB, pressure_max_per_day=0) as stack:
        started = []
        for body in events:
            started += [
                j.workflow_id
                for j in (await stack.relance.send_event(body)).journeys
                if j.status == "started"
            ]
        async with time_skipping(stack.client):
            for wf_id in started:
                await stack.client.get_workflow_handle(wf_id).result()
        ledger: Ledger = {}
        async with stack.sessions() as session:
            for row in await session.scalars(select(Delivery).order_by(Delivery.at, Delivery.id)):
                ledger.setdefault((row.journey, row.message), []).append(row)
        return ledger, list(stack.channel.messages)  # type: ignore[attr-defined]


def local(row: Delivery) -> datetime:
    return row.at.astimezone(PARIS).replace(microsecond=0)


def at_ten(day: date) -> datetime:
    return datetime.combine(day, time(10), tzinfo=PARIS)


@pytest.mark.feature("M-01")
async def test_action_messages_go_at_once_and_the_signature_code_at_any_hour(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    night = datetime.combine(t0.astimezone(PARIS).date() + timedelta(days=1), time(23, 30), tzinfo=PARIS)
    await time_env.sleep(night - t0)
    ledger, sent = await play(time_env, sqlite_url, [
        event("credentials_requested", night, reset_url="https://club.example/password/abc"),
        event("esignature_requested", night, code="482913"),
        event("subscription_suspended", night, until="2027-02-01"),
        event("mandate_cancelled", night),
        event("contract_signed", night, contract_url="https://club.example/contract/77"),
        event("subscription_terminated", night, ends_on="2027-06-30"),
    ])  # fmt: skip
    for journey in ("credentials_resend", "suspension_confirmation", "mandate_cancellation",
                    "contract_sending", "termination_confirmation"):  # fmt: skip
        [row] = next(rows for (j, _), rows in ledger.items() if j == journey)
        assert row.status == "sent" and abs(row.at - night) < timedelta(seconds=5), journey
    [code] = ledger[("esignature_code", "code")]
    assert (
        code.status == "sent" and code.channel == "sms" and local(code).hour == 23
    )  # not held to the morning
    texts = {m.to: m.text for m in sent if m.channel == "sms"}
    assert texts == {"+33611223344": "Your signature code: 482913. It expires in 10 minutes."}
    assert any("https://club.example/password/abc" in m.text for m in sent)


@pytest.mark.feature("M-02")
async def test_a_subscription_ending_before_and_after_and_a_pack_ending(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    ends = t0.astimezone(PARIS).date() + timedelta(days=40)
    renewed_end = ends + timedelta(days=5)
    ledger, _ = await play(time_env, sqlite_url, [
        event("subscription_updated", t0, subscription_id="S-1", ends_on=ends.isoformat()),
        event("pack_bought", t0, pack_id="P-1", expires_on=(ends + timedelta(days=10)).isoformat()),
        event("subscription_updated", t0, 2, subscription_id="S-2", ends_on=renewed_end.isoformat()),
        event("subscription_renewed", t0 + timedelta(days=1), subscription_id="S-2"),
    ])  # fmt: skip
    before = {r.workflow_id.rsplit(":", 1)[1]: r for r in ledger[("subscription_ending", "before_end")]}
    after = {r.workflow_id.rsplit(":", 1)[1]: r for r in ledger[("subscription_ending", "after_end")]}
    assert (before["S-1"].status, local(before["S-1"])) == ("sent", at_ten(ends - timedelta(days=15)))
    assert (after["S-1"].status, local(after["S-1"])) == ("sent", at_ten(ends + timedelta(days=7)))
    assert before["S-2"].status == after["S-2"].status == "skipped"  # renewed: the journey exits
    [pack] = ledger[("pack_ending", "before_expiry")]
    assert (pack.status, local(pack)) == ("sent", at_ten(ends + timedelta(days=3)))


@pytest.mark.feature("M-03")
async def test_birthday_and_one_month_after_the_subscription_started(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    ledger, sent = await play(time_env, sqlite_url, [
        event("birthday", t0),
        event("subscription_started", t0, subscription_id="S-1"),
        event("subscription_started", t0, 2, subscription_id="S-2"),
        event("subscription_terminated", t0 + timedelta(days=3), ends_on="2027-01-01"),
    ])  # fmt: skip
    assert [r.status for r in ledger[("birthday", "wishes")]] == ["sent"]
    checks = ledger[("one_month", "check_in")]
    assert {r.status for r in checks} == {"skipped"}  # terminated before the month was up: both exit
    assert any(m.subject == "Happy birthday!" for m in sent)


@pytest.mark.feature("M-05")
async def test_booking_waiting_list_and_cancellation_messages(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    starts = (t0 + timedelta(days=5)).isoformat()
    ledger, _ = await play(time_env, sqlite_url, [
        event("booking", t0, booking_id="B-1", starts_at=starts, activity="yoga"),
        event("waitlist_joined", t0, booking_id="B-2", activity="pilates"),
        event("waitlist_promoted", t0 + timedelta(hours=2), booking_id="B-2", activity="pilates"),
        event("waitlist_joined", t0, 2, booking_id="B-3", activity="boxing"),
        event("waitlist_left", t0 + timedelta(hours=1), booking_id="B-3", activity="boxing"),
        event("booking_cancelled", t0 + timedelta(hours=3), booking_id="B-1", activity="yoga"),
    ])  # fmt: skip
    for journey in ("booking_confirmation", "waitlist", "waitlist_to_booked", "waitlist_cancellation",
                    "booking_cancellation"):  # fmt: skip
        assert {r.status for (j, _), rows in ledger.items() if j == journey for r in rows} == {"sent"}, (
            journey
        )
    # The cancellation reaches B-1's reminders: they are skipped, not sent.
    assert {r.status for (j, _), rows in ledger.items() if j == "booking_reminders" for r in rows} == {
        "skipped"
    }


@pytest.mark.feature("M-06")
async def test_re_engagement_status_profile_certificate_and_card(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    expires = t0.astimezone(PARIS).date() + timedelta(days=60)
    prospect = {**MEMBER, "attributes": {"status": "prospect"}}
    client = {**MEMBER, "attributes": {"status": "client"}}
    ledger, _ = await play(time_env, sqlite_url, [
        {**event("profile_created", t0), "contact": prospect},
        {**event("visit", t0 + timedelta(days=1)), "contact": client},  # became a client, seen on a visit
        event("certificate_recorded", t0, expires_on=expires.isoformat()),
        event("card_recorded", t0, expires_on=expires.isoformat()),
    ])  # fmt: skip
    [welcome] = ledger[("became_client", "welcome")]
    assert welcome.status == "sent"
    [area] = ledger[("since_profile_created", "member_area")]
    assert area.status == "sent" and abs(area.at - (t0 + timedelta(days=2))) < timedelta(seconds=5)
    for journey in ("certificate_expiring", "card_expiring"):
        [row] = ledger[(journey, "reminder")]
        assert (row.status, local(row)) == ("sent", at_ten(expires - timedelta(days=30)))


@pytest.mark.feature("M-07")
async def test_no_shows_each_and_three_in_a_month(time_env: WorkflowEnvironment, sqlite_url: str) -> None:
    t0 = await time_env.get_current_time()
    first = datetime.combine(t0.astimezone(PARIS).date().replace(day=1) + timedelta(days=40), time(12), PARIS)
    month_start = first.replace(day=1)
    shows = [event("no_show", month_start + timedelta(days=d), d, booking_id=f"B-{d}") for d in (1, 5, 9)]
    early = [
        event("no_show", month_start + timedelta(days=32 + d), 40 + d, booking_id=f"C-{d}") for d in (1, 2)
    ]
    await time_env.sleep(month_start + timedelta(days=40) - t0)
    ledger, _ = await play(time_env, sqlite_url, shows + early)
    assert [r.status for r in ledger[("no_show", "notice")]] == ["sent"] * 5
    [warning] = ledger[("no_shows_in_a_month", "warning")]  # the third of the first month; two in the next
    assert warning.status == "sent" and warning.workflow_id.endswith(f"month%3A{month_start:%Y-%m}")


@pytest.mark.feature("M-08")
async def test_a_rejected_direct_debit_links_to_the_member_area(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    t0 = await time_env.get_current_time()
    ledger, sent = await play(time_env, sqlite_url, [
        event("payment_rejected", t0, payment_id="D-1", amount=39.9, settle_url="https://club.example/pay/D-1"),
        event("payment_rejected", t0, 2, payment_id="D-1", amount=39.9, settle_url="https://club.example/pay/D-1"),
    ])  # fmt: skip
    assert [r.status for r in ledger[("direct_debit_rejected", "settle")]] == ["sent"]  # once per payment
    [mail] = [m for m in sent if m.subject == "Your direct debit was rejected"]
    assert (
        "Settle it in your member area: https://club.example/pay/D-1" in mail.text and "39.9 €" in mail.text
    )
