"""Operators find journeys in Temporal by typed search attributes and read a memo (J-05, O-03)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from relance.workflows import search_attributes as sa
from relance.workflows.journey import JourneyWorkflow
from tests.conftest import purchase, quick_scenario, running_stack


@pytest.mark.feature("J-05")
@pytest.mark.feature("O-03")
async def test_journeys_are_listed_by_contact_and_step_with_a_memo_summary(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    quick_scenario(tmp_path, name="visible")
    async with running_stack(dev_env.client, sqlite_url, scenarios_dir=tmp_path) as stack:
        t0 = await dev_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(t0, order="V-1", contact="vis-1"))
        wf_id = accepted.journeys[0].workflow_id
        handle = stack.client.get_workflow_handle_for(JourneyWorkflow.run, wf_id)
        for _ in range(100):  # the invite goes after 1 s, then the journey waits on the reminder
            state = await handle.query(JourneyWorkflow.state)
            if state.current_step == "reminder":
                break
            await asyncio.sleep(0.1)
        assert state.current_step == "reminder"

        description = await handle.describe()
        attributes = description.typed_search_attributes
        assert attributes.get(sa.CONTACT_ID) == "vis-1"
        assert attributes.get(sa.SCENARIO) == "visible"
        assert attributes.get(sa.JOURNEY) == "thanks"
        assert attributes.get(sa.STEP) == "reminder"
        version = stack.relance.ingestor.scenarios().get("visible").version  # type: ignore[union-attr]
        assert attributes.get(sa.SCENARIO_VERSION) == version
        summary = (await description.memo())["summary"]
        assert summary.startswith("visible/thanks for vis-1 (running): invite sent; next: reminder at ")

        found: list[str] = []
        for _ in range(50):  # visibility is eventually consistent
            found = [
                w.id
                async for w in stack.client.list_workflows(
                    'ContactId = "vis-1" AND Step = "reminder" AND Scenario = "visible"'
                )
            ]
            if found:
                break
            await asyncio.sleep(0.2)
        assert found == [wf_id]
        await handle.terminate("test over")


@pytest.mark.feature("R-10")
@pytest.mark.feature("G-01")
async def test_operators_find_a_referral_and_its_card_by_their_ids(
    dev_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(dev_env.client, sqlite_url, referral_validation_days=0) as stack:
        t0 = await dev_env.get_current_time()
        await stack.relance.send_event(purchase(t0, order="V-2", contact="vis-2"))
        answer = await stack.relance.invite_referees("vis-2", [{"email": "vis-3@example.com"}])
        referral = answer.referrals[0].referral_id

        async def listed(query: str) -> list[str]:
            for _ in range(75):  # visibility is eventually consistent
                found = [w.id async for w in stack.client.list_workflows(query)]
                if found:
                    return found
                await asyncio.sleep(0.2)
            return []

        assert await listed(f'ReferralId = "{referral}" AND Step = "invited"') == [f"referral:{referral}"]
        bought = purchase(t0, order="V-3", contact="vis-3")
        bought["properties"]["referral_id"] = referral
        await stack.relance.send_event(bought)
        # Validation after 0 days: the reward card is issued at once and the referral is rewarded.
        assert await listed(f'ReferralId = "{referral}" AND Step = "rewarded"') == [f"referral:{referral}"]
        card = f"gift-card:reward-{referral}"
        assert await listed(f'GiftCardId = "{card}" AND Step = "active"') == [card]
        state = await stack.relance.referral_state(referral)
        assert (state.status, state.order_id) == ("rewarded", "V-3")
        for wf_id in (f"referral:{referral}", card):
            await stack.client.get_workflow_handle(wf_id).terminate("test over")
