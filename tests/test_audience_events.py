"""Events segments read (visits, bookings, payments, interactions) are taken by /v1/events (C-07, C-09)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import api_client, running_stack


@pytest.mark.feature("C-07")
async def test_visits_posted_as_events_feed_a_segment(time_env: WorkflowEnvironment, sqlite_url: str) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as http:
        now = await time_env.get_current_time()
        for who, visits in (("ana", 3), ("ben", 2)):
            for n in range(visits):
                answer = await http.post("/v1/events", json={
                    "id": f"{who}-visit-{n}", "type": "visit", "contact": {"external_id": who},
                    "occurred_at": (now - timedelta(days=n + 1)).isoformat(), "properties": {"club": "A"}})  # fmt: skip
                assert answer.status_code == 202, answer.text
        typo = await http.post("/v1/events", json={"type": "vist", "contact": {"external_id": "ana"},
                                                   "occurred_at": now.isoformat()})  # fmt: skip
        assert typo.status_code == 422  # still refused: neither a scenario's nor a segment's
        counted = await http.post("/v1/segments/count", json={"segment": {"visits": {"min": 3, "days": 15}}})
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"count": 1}
