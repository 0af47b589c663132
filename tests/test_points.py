"""Loyalty points and gift-shop reservations (G-02, G-03)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import api_client, running_stack


@pytest.mark.feature("G-02")
@pytest.mark.feature("G-03")
async def test_points_are_earned_and_spent_on_a_gift_with_its_confirmation(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        await http.post(
            "/v1/contacts", json={"external_id": "mia", "email": "mia@example.com", "first_name": "Mia"}
        )
        earned = await http.post("/v1/points/earn", json={"key": "order-1", "contact": "mia", "points": 120,
                                                          "reason": "order 1"})  # fmt: skip
        assert earned.json() == {"contact": "mia", "balance": 120, "entry": 120, "duplicate": False}
        again = await http.post("/v1/points/earn", json={"key": "order-1", "contact": "mia", "points": 120,
                                                         "reason": "order 1"})  # fmt: skip
        assert again.json()["duplicate"] is True and again.json()["balance"] == 120
        reserved = await http.post("/v1/points/reserve", json={"key": "r-1", "contact": "mia", "gift": "Tote bag",
                                                               "cost": 80})  # fmt: skip
        assert reserved.json() == {"contact": "mia", "balance": 40, "entry": -80, "duplicate": False}
        short = await http.post("/v1/points/reserve", json={"key": "r-2", "contact": "mia", "gift": "Mug",
                                                            "cost": 50})  # fmt: skip
        assert short.status_code == 409 and short.json()["error"] == "50 points needed, the balance is 40"
        # Two reservations of the last 40 points at once: one goes, one is refused.
        both = await asyncio.gather(*(
            http.post("/v1/points/reserve", json={"key": f"r-{n}", "contact": "mia", "gift": "Pen", "cost": 40})
            for n in (3, 4)
        ))  # fmt: skip
        assert sorted(r.status_code for r in both) == [200, 409]
        assert (await http.get("/v1/points/mia")).json()["balance"] == 0
        assert (await http.get("/v1/points/nobody")).status_code == 404
        await time_env.sleep(timedelta(minutes=1))
        for _ in range(100):
            if len(stack.channel.messages) >= 2:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.1)
    confirmations = sorted((m.subject, m.text) for m in stack.channel.messages)  # type: ignore[attr-defined]
    assert (
        confirmations[0][0] == "Your gift is reserved: Pen"
        and "balance is now 0 points" in confirmations[0][1]
    )
    assert confirmations[1][0] == "Your gift is reserved: Tote bag"
    assert "for 80 points.\nYour balance is now 40 points." in confirmations[1][1]
