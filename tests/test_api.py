"""POST /v1/events and the journey endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relance.devstack.binaries import temporal_cli
from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from relance.models.tables.journey import JourneyRun
from relance.simulation.run import time_skipping
from relance.starter.client import register_search_attributes
from relance.workflows.journey import JourneyWorkflow
from tests.conftest import Stack, api_client, running_stack

pytestmark = pytest.mark.feature("O-04")


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    time_env: WorkflowEnvironment, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Stack]]:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as client:
        yield client, stack


async def counts(stack: Stack) -> dict[str, int]:
    async with stack.sessions() as session:
        return {
            table.__tablename__: await session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Contact, Event, JourneyRun)
        }


def body(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "id": "evt-1",
        "type": "purchase",
        "contact": {
            "external_id": "shop-42",
            "email": "Jane.Doe@Example.com",
            "first_name": "Jane",
        },
        "occurred_at": "2026-11-02T10:15:00+01:00",
        "properties": {"order_id": "O-1001", "amount": 42.5},
    }
    payload.update(overrides)
    return payload


@pytest.mark.feature("J-01")
async def test_event_upserts_the_contact_stores_the_event_and_starts_the_journey(
    api: tuple[httpx.AsyncClient, Stack],
) -> None:
    client, stack = api
    now = datetime.now(UTC).isoformat()  # the invite is still ahead when we query below
    response = await client.post("/v1/events", json=body(occurred_at=now))
    assert response.status_code == 202, response.text
    answer = response.json()
    wf_id = "journey:referral:post_purchase:shop-42:O-1001"
    assert answer["contact"] == "shop-42" and answer["contact_created"] is True
    assert answer["journeys"] == [
        {
            "workflow_id": wf_id,
            "scenario": "referral",
            "journey": "post_purchase",
            "status": "started",
        }
    ]
    assert await counts(stack) == {"contacts": 1, "events": 1, "journeys": 1}
    async with stack.sessions() as session:
        contact = await session.scalar(select(Contact))
        assert contact is not None and contact.email == "Jane.Doe@example.com"  # domain normalised

    # Same idempotency key: stored once, nothing started again.
    again = await client.post("/v1/events", json=body(occurred_at=now))
    assert again.status_code == 202 and again.json()["duplicate"] is True
    # A new event for the same contact updates it, never duplicates it.
    update = await client.post(
        "/v1/events",
        json=body(
            id="evt-2",
            contact={"external_id": "shop-42", "first_name": "Janet"},
            properties={"order_id": "O-1002"},
        ),
    )
    assert update.status_code == 202 and update.json()["contact_created"] is False
    assert await counts(stack) == {"contacts": 1, "events": 2, "journeys": 2}
    async with stack.sessions() as session:
        contact = await session.scalar(select(Contact))
        assert contact is not None and (contact.first_name, contact.email) == (
            "Janet",
            "Jane.Doe@example.com",
        )

    state = await client.get(f"/v1/journeys/{wf_id}")
    assert state.status_code == 200
    assert state.json()["current_step"] == "invite"
    cancelled = await client.post(f"/v1/journeys/{wf_id}/cancel", json={"reason": "order refunded"})
    assert cancelled.status_code == 202
    async with time_skipping(stack.client):
        result = await stack.client.get_workflow_handle_for(JourneyWorkflow.run, wf_id).result()
    assert result.status == "cancelled"


@pytest.mark.parametrize(
    ("payload", "status", "field", "fragment"),
    [
        (body(type="purchse"), 422, "type", "unknown event type 'purchse'"),
        (
            body(contact={"first_name": "Jane"}),
            422,
            "contact",
            "needs an 'external_id' or an 'email'",
        ),
        (
            body(contact={"external_id": "x", "email": "jane@"}),
            422,
            "contact.email",
            "not a valid email",
        ),
        (body(occurred_at="2026-11-02T10:15:00"), 422, "occurred_at", "timezone"),
        (body(properties={}), 422, "properties.order_id", "add it to the event's properties"),
        (body(extra=1), 422, "extra", "Extra inputs are not permitted"),
    ],
)
async def test_bad_events_are_refused_with_the_field_and_nothing_is_stored(
    api: tuple[httpx.AsyncClient, Stack],
    payload: dict[str, object],
    status: int,
    field: str,
    fragment: str,
) -> None:
    client, stack = api
    response = await client.post("/v1/events", json=payload)
    assert response.status_code == status, response.text
    details = response.json()["details"]
    assert any(d["field"] == field and fragment in d["message"] for d in details), details
    assert await counts(stack) == {"contacts": 0, "events": 0, "journeys": 0}


async def test_malformed_json_is_a_400_naming_the_position(
    api: tuple[httpx.AsyncClient, Stack],
) -> None:
    client, stack = api
    response = await client.post(
        "/v1/events", content=b'{"type": "purchase",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not valid JSON")
    assert await counts(stack) == {"contacts": 0, "events": 0, "journeys": 0}


async def test_unknown_journey_is_a_404(api: tuple[httpx.AsyncClient, Stack]) -> None:
    client, _ = api
    response = await client.get("/v1/journeys/journey:nope:nope:x:y")
    assert response.status_code == 404
    assert "no journey" in response.json()["error"]


async def test_openapi_documents_the_event_endpoint(api: tuple[httpx.AsyncClient, Stack]) -> None:
    client, _ = api
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/events" in spec["paths"]
    assert "EventIn" in spec["components"]["schemas"]


async def test_when_temporal_refuses_the_event_is_kept_and_a_retry_starts_its_journeys(
    sqlite_url: str,
) -> None:
    # A server without relance's search attributes refuses every start: a misconfigured cluster.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=["--log-level", "error"],
    )
    async with env, running_stack(env.client, sqlite_url) as stack:
        async with api_client(stack) as client:
            payload = body(occurred_at=datetime.now(UTC).isoformat())
            refused = await client.post("/v1/events", json=payload)
            assert refused.status_code == 503
            assert "send it again with the same 'id'" in refused.json()["error"]
            async with stack.sessions() as session:
                run = await session.scalar(select(JourneyRun))
                assert run is not None and run.status == "starting"

            await register_search_attributes(env.client, "default")  # the operator fixes it
            retried = await client.post("/v1/events", json=payload)
            assert retried.status_code == 202, retried.text
            answer = retried.json()
            assert answer["duplicate"] is True
            assert [j["status"] for j in answer["journeys"]] == ["started"]
            assert await counts(stack) == {"contacts": 1, "events": 1, "journeys": 1}
            async with stack.sessions() as session:
                run = await session.scalar(select(JourneyRun))
                assert run is not None and run.status == "running"
            state = await client.get(f"/v1/journeys/{run.workflow_id}")
            assert state.json()["current_step"] == "invite"


@pytest.mark.feature("O-04")
async def test_api_keys_guard_the_v1_endpoints_but_not_contact_links(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(time_env.client, sqlite_url, api_keys="k-shop-1, k-club-2") as stack:
        async with api_client(stack) as client:
            payload = body(occurred_at=datetime.now(UTC).isoformat())
            missing = await client.post("/v1/events", json=payload)
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer <key>" in missing.json()["error"]
            wrong = await client.post(
                "/v1/events", json=payload, headers={"Authorization": "Bearer k-shop-2"}
            )
            assert wrong.status_code == 401
            assert await counts(stack) == {"contacts": 0, "events": 0, "journeys": 0}
            for key in ("k-shop-1", "k-club-2"):
                ok = await client.post(
                    "/v1/contacts",
                    json={"external_id": f"x-{key}"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert ok.status_code == 200
            # Links in messages are signed, not keyed: a contact's browser has no API key.
            assert (await client.get("/u/not-a-token")).status_code == 400
            assert (await client.get("/healthz")).status_code == 200
            spec = (await client.get("/openapi.json")).json()
            assert "HTTPBearer" in spec["components"]["securitySchemes"]
