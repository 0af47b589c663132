"""E-gift cards: issued and sent, used (partly, fully), warned 7 days before a year is up, expired (G-01, G-04 … G-06)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.activities.gift_card import add_months
from relance.models.tables.delivery import Delivery
from relance.models.tables.gift_card import GiftCard
from relance.simulation.run import time_skipping
from relance.workflows.gift_card import GiftCardWorkflow
from tests.conftest import Stack, api_client, running_stack

DAY = timedelta(days=1)


async def mail(stack: Stack) -> list[tuple[str, str]]:
    return [(m.subject or "", m.text) for m in stack.channel.messages]  # type: ignore[attr-defined]


async def card_row(stack: Stack, key: str) -> GiftCard:
    async with stack.sessions() as session:
        row = await session.scalar(select(GiftCard).where(GiftCard.key == key))
        assert row is not None
        return row


@pytest.mark.feature("G-01")
@pytest.mark.feature("G-04")
async def test_a_card_is_issued_once_sent_and_used_until_empty(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        await http.post(
            "/v1/contacts", json={"external_id": "mia", "email": "mia@example.com", "first_name": "Mia"}
        )
        body = {"key": "reward-R1", "contact": "mia", "amount": 50}
        given_card = await http.post("/v1/gift-cards", json=body)
        assert given_card.status_code == 202, given_card.text
        again = await http.post("/v1/gift-cards", json=body)
        assert again.json()["status"] == "duplicate"  # the same key never issues twice
        await time_env.sleep(timedelta(minutes=1))
        state = (await http.get("/v1/gift-cards/reward-R1")).json()
        assert state["status"] == "active"
        code = state["card"]["code"]
        assert len(code) == 19 and code.count("-") == 3

        too_much = await http.post(
            "/v1/gift-cards/reward-R1/use",
            content='{"amount": 1e999}',
            headers={"content-type": "application/json"},
        )
        assert too_much.status_code == 422 and too_much.json()["details"][0]["field"] == "amount"
        assert (await http.post("/v1/gift-cards/reward-R1/use", json={"amount": 20})).status_code == 202
        await time_env.sleep(timedelta(minutes=1))
        assert (await http.post("/v1/gift-cards/reward-R1/use", json={"amount": 45})).status_code == 202
        handle = stack.client.get_workflow_handle_for(GiftCardWorkflow.run, "gift-card:reward-R1")
        async with time_skipping(stack.client):
            final = await handle.result()
        assert (await http.post("/v1/gift-cards/nope/use", json={"amount": 1})).status_code == 404
        row = await card_row(stack, "reward-R1")
    assert final.status == "used" and final.messages == ["delivery: sent", "used: sent", "used: sent"]
    assert (row.balance_cents, row.status) == (0, "used")
    sent = await mail(stack)
    assert sent[0][0] == "Your 50.00 EUR gift card" and code in sent[0][1]
    assert sent[1][0] == "30.00 EUR left on your gift card"
    assert sent[2][0] == "Your gift card is fully used"


@pytest.mark.feature("G-05")
@pytest.mark.feature("G-06")
async def test_an_unspent_card_is_warned_seven_days_before_a_year_then_expires(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        await http.post("/v1/contacts", json={"external_id": "leo", "email": "leo@example.com"})
        await http.post("/v1/gift-cards", json={"key": "loyalty-7", "contact": "leo", "amount": 15})
        await time_env.sleep(timedelta(minutes=1))
        await http.post("/v1/gift-cards/loyalty-7/use", json={"amount": 5})
        handle = stack.client.get_workflow_handle_for(GiftCardWorkflow.run, "gift-card:loyalty-7")
        async with time_skipping(stack.client):
            final = await handle.result()
        row = await card_row(stack, "loyalty-7")
        async with stack.sessions() as session:
            ledger = {d.message: d.at for d in await session.scalars(select(Delivery))}
    assert final.status == "expired" and row.status == "expired" and row.balance_cents == 1000
    assert row.expires_at == add_months(row.issued_at, 12)
    assert abs(ledger["expiry_warning"] - (row.expires_at - 7 * DAY)) < timedelta(minutes=1)
    assert abs(ledger["expired"] - row.expires_at) < timedelta(minutes=1)
    subjects = [s for s, _ in await mail(stack)]
    assert subjects == ["Your 15.00 EUR gift card", "10.00 EUR left on your gift card",
                        f"Your gift card ends on {row.expires_at.date().isoformat()}",
                        "Your gift card has expired"]  # fmt: skip


@pytest.mark.feature("G-05")
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)), st.integers(1, 24))
def test_validity_counts_calendar_months_from_the_issue_date(issued: datetime, months: int) -> None:
    at = issued.replace(tzinfo=UTC)
    later = add_months(at, months)
    assert (later.year * 12 + later.month) - (at.year * 12 + at.month) == months
    assert later.day == at.day or (later.day < at.day and (later + DAY).month != later.month)
    assert later.time() == at.time()
