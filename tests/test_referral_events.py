"""The referral program from the shop's events: shared-link purchases with a sponsor's code, the
thank-you's timing, generated reward codes, the Python starter, and bad referral events (R-05 … R-17)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.channels.memory import CaptureChannel
from relance.models.tables.delivery import Delivery
from relance.models.tables.event import Event
from relance.models.tables.referral import Referral
from relance.simulation.run import time_skipping
from relance.workflows.referral import ReferralWorkflow
from tests.conftest import api_client, purchase, running_stack


def body(type: str, contact: dict[str, Any], at: datetime, **properties: object) -> dict[str, Any]:
    return {"type": type, "contact": contact, "occurred_at": at.isoformat(), "properties": properties}


async def post(
    http: httpx.AsyncClient, type: str, email: str, at: datetime, **properties: object
) -> httpx.Response:
    return await http.post("/v1/events", json=body(type, {"email": email}, at, **properties))


@pytest.mark.feature("R-10")
@pytest.mark.feature("R-17")
async def test_a_friend_nobody_invited_buys_with_the_sponsors_code(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", first_name="Sam"))
        await stack.relance.send_event(purchase(t0 - timedelta(days=40), order="O-1", contact="old"))
        code = await stack.relance.referral_code("sam")
        later = t0 + timedelta(minutes=5)

        zoe = await post(http, "purchase", "zoe@example.com", later, order_id="Z-1", referral_code=code)
        assert zoe.status_code == 202, zoe.text
        [outcome] = zoe.json()["referrals"]
        assert (outcome["status"], outcome["detail"]) == ("reconciled", "order Z-1")
        state = await stack.relance.referral_state(outcome["referral_id"])
        assert state.order_id == "Z-1"  # the referee found us through the code: no invitation step

        old = await post(http, "purchase", "old@example.com", later, order_id="O-2", referral_code=code)
        assert old.json()["referrals"][0]["status"] == "refused"
        assert old.json()["referrals"][0]["detail"] == "the referee is already a customer"
        own = await post(http, "purchase", "sam@example.com", later, order_id="S-2", referral_code=code)
        assert own.json()["referrals"][0]["detail"] == "self-referral: the referee is the sponsor"
        typo = await post(
            http, "purchase", "amy@example.com", later, order_id="A-1", referral_code="SAM-0000"
        )
        assert typo.status_code == 202  # the purchase itself is kept and runs its journeys
        assert typo.json()["referrals"] == [
            {
                "referral_id": None,
                "status": "unknown",
                "detail": "no sponsor has the referral code 'SAM-0000': check it; "
                "the purchase is kept, no referral reconciled",
            }
        ]
        link = await post(http, "purchase", "amy@example.com", later, order_id="A-2", referral_id="nope")
        assert link.json()["referrals"][0]["status"] == "unknown"

        handle = stack.client.get_workflow_handle_for(
            ReferralWorkflow.run, f"referral:{outcome['referral_id']}"
        )
        async with time_skipping(stack.client):
            final = await handle.result()
        async with stack.sessions() as session:
            rows = {r.referee_email: (r.status, r.reason) for r in await session.scalars(select(Referral))}
            purchases = await session.scalar(
                select(Event.id).where(Event.properties["order_id"].as_string() == "A-1")
            )
            sent = [
                (d.message, d.status)
                for d in await session.scalars(
                    select(Delivery)
                    .where(Delivery.journey == outcome["referral_id"])
                    .order_by(Delivery.at, Delivery.id)
                )
            ]

    assert final.status == "rewarded"
    assert sent[:2] == [("reconciled_sponsor", "sent"), ("reconciled_referee", "sent")]
    assert "invitation" not in [m for m, _ in sent]  # she found us through the shared code: no invitation
    assert rows["zoe@example.com"] == ("rewarded", None)
    assert rows["old@example.com"] == ("refused", "the referee is already a customer")
    assert rows["sam@example.com"] == ("refused", "self-referral: the referee is the sponsor")
    assert purchases is not None


@pytest.mark.feature("R-08")
@pytest.mark.parametrize(("mode", "delay"), [("immediately", timedelta(0)), ("24h", timedelta(hours=24))])
async def test_the_thank_you_goes_at_the_configured_time(
    time_env: WorkflowEnvironment, sqlite_url: str, mode: str, delay: timedelta
) -> None:
    async with running_stack(time_env.client, sqlite_url, referral_thank_you=mode) as stack:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", first_name="Sam"))
        answer = await stack.relance.invite_referees(
            "sam", [{"email": "ana@example.com", "first_name": "Ana"}, {"email": "sam@example.com"}]
        )
        assert [(r.status, r.reason) for r in answer.referrals] == [
            ("invited", None),
            ("refused", "self-referral: the referee is the sponsor"),
        ]
        handle = stack.client.get_workflow_handle(f"referral-thanks:{answer.batch_id}")
        async with time_skipping(stack.client):
            assert await handle.result() == "sent"
        async with stack.sessions() as session:
            [thanks] = await session.scalars(select(Delivery).where(Delivery.journey == answer.batch_id))
    assert thanks.message == "thank_you" and thanks.contact_external_id == "sam"
    assert abs(thanks.at - (t0 + delay)) < timedelta(minutes=1)


@pytest.mark.feature("R-12")
async def test_generated_reward_codes(time_env: WorkflowEnvironment, sqlite_url: str) -> None:
    async with running_stack(
        time_env.client, sqlite_url, referral_reward="promo_generated", referral_promo_prefix="MERCI"
    ) as stack:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", first_name="Sam"))
        [invited] = (await stack.relance.invite_referees("sam", [{"email": "ben@example.com"}])).referrals
        bought = body(
            "purchase", {"email": "ben@example.com"}, t0, order_id="B-1", referral_id=invited.referral_id
        )
        await stack.relance.send_event(bought)
        handle = stack.client.get_workflow_handle_for(ReferralWorkflow.run, f"referral:{invited.referral_id}")
        async with time_skipping(stack.client):
            final = await handle.result()
    assert final.status == "rewarded"
    assert final.reward_code is not None and final.reward_code.startswith("MERCI-")
    assert "reward_reminder: sent" in final.messages  # never used in a purchase


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        (
            {
                "type": "referral_sent",
                "properties": {"referees": [{"email": "x@example.com"}, {"first_name": "No"}]},
            },
            "properties.referees.1",
            "give the referee's email or phone",
        ),
        (
            {"type": "referral_sent", "properties": {"referees": []}},
            "properties.referees",
            "list at least one friend to invite",
        ),
        (
            {
                "type": "referral_sent",
                "properties": {"referees": [{"email": "x@example.com"}], "channel": "fax"},
            },
            "properties.channel",
            "'fax' is not email or sms",
        ),
        (
            {"type": "purchase", "properties": {"referral_code": "SAM-1234"}},
            "properties.order_id",
            "a purchase with a referral needs its order_id (returns name it)",
        ),
        (
            {"type": "order_returned", "properties": {}},
            "properties.order_id",
            "'order_returned' needs the order_id it concerns",
        ),
    ],
)
async def test_bad_referral_events_are_refused_before_anything_is_stored(
    time_env: WorkflowEnvironment, sqlite_url: str, event: dict[str, Any], field: str, message: str
) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        at = (await time_env.get_current_time()).isoformat()
        answer = await http.post(
            "/v1/events", json={**event, "contact": {"external_id": "sam"}, "occurred_at": at}
        )
        async with stack.sessions() as session:
            stored = list(await session.scalars(select(Event)))
    assert answer.status_code == 422
    assert {"field": field, "message": message} in answer.json()["details"], answer.text
    assert stored == []


@pytest.mark.feature("R-05")
async def test_a_referee_invited_by_sms(time_env: WorkflowEnvironment, sqlite_url: str) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        t0 = await time_env.get_current_time()
        await stack.relance.send_event(
            purchase(t0, order="S-1", contact="sam", first_name="Sam", last_name="Moreau")
        )
        answer = await http.post(
            "/v1/referrals", json={"sponsor": "sam", "referee": {"phone": "06 12 34 56 78"}, "channel": "sms"}
        )
        assert answer.status_code == 201, answer.text
        await time_env.sleep(timedelta(days=1))  # SMS wait for the contact's daytime hours
        assert isinstance(stack.channel, CaptureChannel)
        texts = [m for m in stack.channel.messages if m.channel == "sms"]
    assert [m.to for m in texts] == ["+33612345678"]
    assert texts[0].text.startswith("Sam Moreau invites you to discover our shop")
    assert "/o/" in texts[0].text and "/u/" in texts[0].text  # opt-in and unsubscribe links


@pytest.mark.feature("R-03")
async def test_inviting_through_the_api_skips_the_post_purchase_reminder(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(t0, order="S-1", contact="sam", first_name="Sam"))
        await time_env.sleep(timedelta(days=4))  # the post-purchase message went on day 3
        invited = await http.post(
            "/v1/referrals", json={"sponsor": "sam", "referee": {"email": "kim@example.com"}}
        )
        assert invited.status_code == 201, invited.text
        handle = stack.client.get_workflow_handle(accepted.journeys[0].workflow_id)
        async with time_skipping(stack.client):
            await handle.result()
        async with stack.sessions() as session:
            steps = {
                d.message: (d.status, d.reason)
                for d in await session.scalars(select(Delivery).where(Delivery.journey == "post_purchase"))
            }
    assert steps["invite"] == ("sent", None)
    assert steps["reminder"] == ("skipped", "contact sent 'referral_sent' since the journey started")
