"""Referrals from invitation to reward: a sponsor invites three friends (R-05, R-07, R-09 … R-12, R-14, R-15, R-17)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.channels.memory import CaptureChannel
from relance.models.referral import ReferralState
from relance.models.tables.delivery import Delivery
from relance.models.tables.referral import Referral
from relance.simulation.run import time_skipping
from relance.workflows.gift_card import GiftCardWorkflow
from relance.workflows.referral import ReferralWorkflow
from tests.conftest import EXAMPLES, Stack, api_client, purchase, running_stack

DAY = timedelta(days=1)


async def invite(http: httpx.AsyncClient, email: str, **referee: str) -> httpx.Response:
    return await http.post("/v1/referrals", json={"sponsor": "sam", "referee": {"email": email, **referee}})


async def event(
    http: httpx.AsyncClient,
    type: str,
    contact: str,
    at: datetime,
    id: str | None = None,
    email: str | None = None,
    **properties: object,
) -> httpx.Response:
    body = {"type": type, "contact": {"external_id": contact, **({"email": email} if email else {})},
            "occurred_at": at.isoformat(), "properties": properties, **({"id": id} if id else {})}  # fmt: skip
    return await http.post("/v1/events", json=body)


async def result(stack: Stack, referral_id: str) -> ReferralState:
    handle = stack.client.get_workflow_handle_for(ReferralWorkflow.run, f"referral:{referral_id}")
    async with time_skipping(stack.client):
        return await handle.result()


async def messages_of(stack: Stack, referral_id: str) -> list[tuple[str, str, str, str | None]]:
    async with stack.sessions() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.journey == referral_id).order_by(Delivery.at, Delivery.id)
        )
        return [(r.message, r.contact_external_id, r.status, r.reason) for r in rows]


@pytest.mark.feature("R-05")
@pytest.mark.feature("R-07")
@pytest.mark.feature("R-08")
@pytest.mark.feature("R-13")
@pytest.mark.feature("R-16")
@pytest.mark.feature("R-09")
@pytest.mark.feature("R-10")
@pytest.mark.feature("R-11")
@pytest.mark.feature("R-12")
@pytest.mark.feature("R-14")
@pytest.mark.feature("R-15")
async def test_a_sponsor_invites_three_friends(time_env: WorkflowEnvironment, sqlite_url: str) -> None:
    """The whole story through events, as a shop's backend would send them."""
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", first_name="Sam"))
        code = (await http.get("/v1/referrals/codes/sam")).json()["code"]
        assert code.startswith("SAM-") and (await http.get("/v1/referrals/codes/sam")).json()["code"] == code
        friends = [{"email": f"{f}@example.com", "first_name": f.title()} for f in ("ana", "ben", "cyd")]
        sent = await event(http, "referral_sent", "sam", t0, id="inv-1", referees=friends)
        assert sent.status_code == 202, sent.text
        outcomes = sent.json()["referrals"]
        assert [(o["referral_id"], o["status"]) for o in outcomes] == [
            ("inv-1-1", "invited"), ("inv-1-2", "invited"), ("inv-1-3", "invited")
        ]  # fmt: skip
        again = await event(http, "referral_sent", "sam", t0, id="inv-1", referees=friends)  # a retry
        assert again.json()["duplicate"] and again.json()["referrals"] == outcomes  # nobody invited twice
        ids = {"ana": "inv-1-1", "ben": "inv-1-2", "cyd": "inv-1-3"}
        # Ana buys through her invitation link, then returns it within the withdrawal period.
        await time_env.sleep(2 * DAY)
        now = await time_env.get_current_time()
        ana = await event(
            http, "purchase", "ana", now, email="ana@example.com", order_id="A-9", referral_id="inv-1-1"
        )
        assert ana.json()["referrals"] == [
            {"referral_id": "inv-1-1", "status": "reconciled", "detail": "order A-9"}
        ]
        # Ben types Sam's code at the till, and the shop posts the purchase twice.
        ben = await event(
            http, "purchase", "ben", now, email="ben@example.com", order_id="B-9", referral_code=code.lower()
        )
        assert ben.json()["referrals"][0]["status"] == "reconciled"
        twice = await event(
            http, "purchase", "ben", now, email="ben@example.com", order_id="B-9", referral_code=code
        )
        assert twice.json()["referrals"][0] == {
            "referral_id": "inv-1-2", "status": "ignored", "detail": "order B-9 already reconciled"
        }  # fmt: skip
        second = await event(
            http, "purchase", "ben", now, email="ben@example.com", order_id="B-10", referral_code=code
        )
        assert (
            second.json()["referrals"][0]["detail"]
            == "already reconciled with order B-9: one reward per referral"
        )
        await time_env.sleep(3 * DAY)
        now = await time_env.get_current_time()
        returned = await event(http, "order_returned", "ana", now, email="ana@example.com", order_id="A-9")
        assert returned.json()["referrals"][0]["status"] == "cancelled"

        results = {friend: await result(stack, ids[friend]) for friend in ids}
        card = stack.client.get_workflow_handle_for(GiftCardWorkflow.run, "gift-card:reward-inv-1-2")
        card_state = await card.query(GiftCardWorkflow.state)
        async with stack.sessions() as session:
            rows = {r.id: (r.status, r.reason) for r in await session.scalars(select(Referral))}
        log = {friend: await messages_of(stack, ids[friend]) for friend in ids}
        thanks = await messages_of(stack, "binv-1")
        assert isinstance(stack.channel, CaptureChannel)
        thank_you = next(
            m for m in stack.channel.messages if m.idempotency_key.startswith("referral-thanks:")
        )
        assert "your invitations to Ana, Ben and Cyd are on their way" in thank_you.text
        late = await event(http, "order_returned", "ana", now, email="ana@example.com", order_id="A-9")
        assert late.json()["referrals"][0] == {
            "referral_id": "inv-1-1", "status": "ignored", "detail": "the referral is abandoned"
        }  # fmt: skip
        after = await event(
            http, "purchase", "ana", now, email="ana@example.com", order_id="A-10", referral_id="inv-1-1"
        )
        assert after.json()["referrals"][0]["detail"] == "the referral is abandoned: nothing to reconcile"

    assert {f: r.status for f, r in results.items()} == {
        "ana": "abandoned",
        "ben": "rewarded",
        "cyd": "abandoned",
    }
    assert rows[ids["ana"]] == ("abandoned", "order A-9 was returned or cancelled")
    assert rows[ids["ben"]] == ("rewarded", None)
    assert rows[ids["cyd"]] == ("abandoned", "the referee did not buy in time")
    assert len(rows) == 3
    assert thanks == [("thank_you", "sam", "sent", None)]  # one for the three invitations
    ben_id = log["ben"][0][1]  # the referee's contact, created by the invitation from the address
    assert ben_id.startswith("rc_")
    assert [(m, who, s) for m, who, s, _ in log["ben"]] == [
        ("invitation", ben_id, "sent"),
        ("reconciled_sponsor", "sam", "sent"),
        ("reconciled_referee", ben_id, "sent"),
        ("validated_referee", ben_id, "sent"),
        ("reward_sponsor", "sam", "sent"),
        ("reward_reminder", "sam", "sent"),  # the card was not used within 30 days
        ("refer_again", "sam", "sent"),
    ]
    assert card_state.status == "active" and card_state.card is not None
    assert card_state.card.amount_cents == 1000 and card_state.messages == ["delivery: sent"]
    assert [m for m, *_ in log["ana"]] == [
        "invitation",
        "reconciled_sponsor",
        "reconciled_referee",
        "rejected_sponsor",
    ]
    # Cyd never opted in: the reminder is not sent (GDPR); Sam hears she has not come.
    assert [(m, s, r) for m, _, s, r in log["cyd"]] == [
        ("invitation", "sent", None),
        ("invitation_reminder", "skipped", "no marketing opt-in for email"),
        ("inactive_referee", "sent", None),
    ]


@pytest.mark.feature("R-17")
async def test_fraud_guards_refuse_with_a_reason(time_env: WorkflowEnvironment, database_url: str) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", phone="+33612345678"))
        await stack.relance.send_event(purchase(t0, order="C-1", contact="cleo"))
        self_referral = await invite(http, " SAM@example.com ")
        assert self_referral.status_code == 422
        assert self_referral.json()["details"] == [
            {"field": "referee", "message": "self-referral: the referee is the sponsor"}
        ]
        by_phone = await http.post(
            "/v1/referrals", json={"sponsor": "sam", "referee": {"phone": "06 12 34 56 78"}}
        )
        assert by_phone.json()["details"][0]["message"] == "self-referral: the referee is the sponsor"
        customer = await invite(http, "cleo@example.com")
        assert customer.json()["details"][0]["message"] == "the referee is already a customer"
        first = await invite(http, "dan@example.com")
        assert first.status_code == 201
        duplicate = await invite(http, "Dan@Example.com")
        assert duplicate.json()["details"][0]["message"] == (
            f"the referee was already invited (referral {first.json()['referral_id']})"
        )
        unknown = await http.post(
            "/v1/referrals", json={"sponsor": "nobody", "referee": {"email": "x@example.com"}}
        )
        assert unknown.status_code == 404
        async with stack.sessions() as session:
            statuses = sorted(r.status for r in await session.scalars(select(Referral)))
    assert statuses == ["invited", "refused", "refused", "refused", "refused"]


@pytest.mark.feature("R-15")
async def test_an_operator_rejects_a_referral_before_it_is_validated(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam"))
        one = (await invite(http, "eve@example.com")).json()["referral_id"]
        await http.post(f"/v1/referrals/{one}/convert", json={"order_id": "E-1"})
        rejected = await http.post(f"/v1/referrals/{one}/reject", json={"reason": "fake order"})
        assert rejected.status_code == 200, rejected.text
        state = await result(stack, one)
        assert (state.status, state.reason) == ("rejected", "fake order")
        late = await http.post(f"/v1/referrals/{one}/convert", json={"order_id": "E-2"})
        assert late.status_code == 409 and "rejected" in late.json()["error"]
        assert [m for m, *_ in await messages_of(stack, one)][-1] == "rejected_sponsor"

        two = (await invite(http, "fay@example.com")).json()["referral_id"]
        await http.post(f"/v1/referrals/{two}/convert", json={"order_id": "F-1"})
        await result(stack, two)
        too_late = await http.post(f"/v1/referrals/{two}/reject", json={"reason": "changed my mind"})
        assert too_late.status_code == 409


@pytest.mark.feature("R-15")
async def test_operators_reject_from_the_command_line(dev_env: WorkflowEnvironment, sqlite_url: str) -> None:
    async with running_stack(dev_env.client, sqlite_url) as stack, api_client(stack) as http:
        await stack.relance.send_event(purchase(await dev_env.get_current_time(), order="S-1", contact="sam"))
        referral = (await invite(http, f"{uuid.uuid4().hex[:8]}@example.com")).json()["referral_id"]
        env = {**os.environ, "RELANCE_DATABASE_URL": sqlite_url, "RELANCE_LOG_LEVEL": "warning",
               "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
               "RELANCE_TASK_QUEUE": stack.settings.task_queue}  # fmt: skip

        def relance(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "relance.cli", "referrals", *args],
                                  capture_output=True, text=True, env=env, timeout=60)  # fmt: skip

        done = await asyncio.to_thread(relance, "reject", referral, "--reason", "duplicate account")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "invited"  # accepted; the workflow ends it now
        handle = stack.client.get_workflow_handle_for(ReferralWorkflow.run, f"referral:{referral}")
        final = await asyncio.wait_for(handle.result(), 30)
        assert (final.status, final.reason) == ("rejected", "duplicate account")
        unknown = await asyncio.to_thread(relance, "show", "r-nope")
        assert unknown.returncode == 1 and "no referral 'r-nope'" in unknown.stderr
        code = await asyncio.to_thread(relance, "code", "sam")
        assert code.returncode == 0, code.stderr
        assert code.stdout.strip() == await stack.relance.referral_code("sam")  # made once, kept
        nobody = await asyncio.to_thread(relance, "code", "nobody")
        assert nobody.returncode == 1 and "no contact 'nobody'" in nobody.stderr


@pytest.mark.feature("R-02")
@pytest.mark.feature("R-04")
@pytest.mark.feature("R-06")
def test_signup_and_discovery_messages_of_the_example_scenario(tmp_path: Path) -> None:
    events = [
        {"id": "s1", "type": "signup", "contact": {"external_id": "liv"}, "occurred_at": "2026-09-01T10:00:00+02:00"},
        {"id": "s2", "type": "signup", "contact": {"external_id": "max"}, "occurred_at": "2026-09-01T11:00:00+02:00"},
        {"id": "r1", "type": "referral_sent", "contact": {"external_id": "max"},
         "occurred_at": "2026-09-04T09:00:00+02:00"},
        {"id": "d1", "type": "referee_registered", "contact": {"external_id": "noe"},
         "occurred_at": "2026-09-05T12:00:00+02:00"},
    ]  # fmt: skip
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "contacts.csv").write_text(
        "external_id,email,time_zone,consent_email_marketing\n"
        "liv,liv@example.com,Europe/Paris,yes\nmax,max@example.com,Europe/Paris,yes\n"
        "noe,noe@example.com,Europe/Paris,no\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "relance.cli", "simulate", "--scenarios", str(EXAMPLES / "scenarios"),
         "--templates", str(EXAMPLES / "templates"), "--events", str(tmp_path / "events.jsonl"),
         "--contacts", str(tmp_path / "contacts.csv"), "--json"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    timeline = [(e["at"], e["contact"], e["message"], e["status"], e["reason"])
                for e in map(json.loads, run.stdout.splitlines())]  # fmt: skip
    assert timeline == [
        ("2026-09-02T10:00:00+02:00", "liv", "welcome", "sent", None),
        ("2026-09-02T11:00:00+02:00", "max", "welcome", "sent", None),
        ("2026-09-05T12:00:00+02:00", "noe", "discovery", "sent", None),  # no opt-in needed: asked for
        ("2026-09-09T10:00:00+02:00", "liv", "reminder", "sent", None),
        ("2026-09-09T11:00:00+02:00", "max", "reminder", "skipped", "contact sent 'referral_sent' since the journey started"),
    ]  # fmt: skip


@pytest.mark.feature("R-12")
@pytest.mark.feature("R-13")
async def test_a_promo_code_reward_waits_for_an_empty_pool_and_is_given_once(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with (
        running_stack(time_env.client, sqlite_url, referral_reward="promo_pool") as stack,
        api_client(stack) as http,
    ):
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", first_name="Sam"))
        friends = [{"email": "dan@example.com", "first_name": "Dan"}]
        await event(http, "referral_sent", "sam", t0, id="inv-2", referees=friends)
        await event(
            http, "purchase", "dan", t0, email="dan@example.com", order_id="D-1", referral_id="inv-2-1"
        )
        await time_env.sleep(16 * DAY)  # validated; the pool "referral" was never loaded
        handle = stack.client.get_workflow_handle_for(ReferralWorkflow.run, "referral:inv-2-1")
        waiting = await handle.query(ReferralWorkflow.state)
        assert (waiting.status, waiting.reward_code) == ("validated", None)
        assert not [m for m in waiting.messages if m.startswith("reward_sponsor")]

        loaded = await http.post("/v1/promo-codes/referral", json={"codes": ["WELCOME-1", "WELCOME-2"]})
        assert loaded.status_code in (200, 201), loaded.text
        await time_env.sleep(timedelta(hours=2))  # the assignment's next retry finds a code
        given = await handle.query(ReferralWorkflow.state)
        assert (given.status, given.reward_code) == ("rewarded", "WELCOME-1")
        # Sam spends it: no reminder 30 days later; the invitation to refer again still comes.
        now = await time_env.get_current_time()
        spent = purchase(now, order="S-2", contact="sam")
        spent["properties"]["promo_code"] = "welcome-1"
        await stack.relance.send_event(spent)
        final = await result(stack, "inv-2-1")
        stats = (await http.get("/v1/promo-codes/referral")).json()

    assert final.reward_code == "WELCOME-1"
    steps = [m.split(":")[0] for m in final.messages]
    assert "reward_sponsor" in steps and "refer_again" in steps and "reward_reminder" not in steps
    assert isinstance(stack.channel, CaptureChannel)
    reward = next(m for m in stack.channel.messages if m.idempotency_key.endswith(":reward_sponsor:email:0"))
    assert "Your reward is the code WELCOME-1" in reward.text
    assert (stats["available"], stats["assigned"]) == (1, 1)  # one code, never a second
