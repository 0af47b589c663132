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
