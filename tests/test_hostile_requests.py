"""Hostile or unlucky requests: text no database can store (NUL, lone surrogates) is refused at the
edge with a 422 naming the field, on every route and both databases, and nothing is written;
unknown bulk sends are a 404; the same event posted several times at once is stored once."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from relance.contacts.upsert import IngestError
from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from tests.conftest import api_client, running_stack

pytestmark = pytest.mark.feature("O-04")


async def test_nul_and_surrogates_are_refused_everywhere_and_nothing_is_stored(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as client:
        schema = (await client.get("/openapi.json")).json()
        tried = 0
        for path, operations in schema["paths"].items():
            if "{" not in path:
                continue
            url = re.sub(r"\{[^}]+\}", "%00", path)
            for method in operations:
                answer = await client.request(method.upper(), url, json={})
                assert answer.status_code == 422, (method, path, answer.text)
                assert answer.json()["details"][0]["field"] == "path"
                tried += 1
        assert tried >= 20

        answer = await client.post(
            "/v1/contacts",
            json={"external_id": "nul-1", "email": "nul@example.com", "first_name": "A\u0000B"},
        )
        assert answer.status_code == 422
        assert answer.json()["details"] == [
            {"field": "first_name", "message": "text cannot contain the NUL character (\\u0000): remove it"}
        ]
        event = {
            "id": "nul-event",
            "type": "purchase",
            "contact": {"external_id": "nul-2", "email": "nul2@example.com"},
            "occurred_at": "2026-11-22T10:15:00+01:00",
            "properties": {"order_id": "1", "notes": ["fine", "bad\u0000"]},
        }
        answer = await client.post("/v1/events", json=event)
        assert answer.status_code == 422
        assert answer.json()["details"][0]["field"] == "properties.notes.1"

        surrogate = '{"segment": {"email": "\\ud800"}}'
        answer = await client.post(
            "/v1/segments/count", content=surrogate, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422
        assert answer.json()["details"][0]["field"] == "segment.email"
        assert "unpaired surrogate" in answer.json()["details"][0]["message"]

        answer = await client.get("/v1/reports/messages", params={"scenario": "shop\u0000"})
        assert answer.status_code == 422
        assert answer.json()["details"][0]["field"] == "query.scenario"

        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Contact)) == 0

        # A well-formed request still goes through the guard untouched.
        fine = {**event, "id": "fine-event", "properties": {"order_id": "1", "notes": "été 😀"}}
        answer = await client.post("/v1/events", json=fine)
        assert answer.status_code == 202, answer.text
        assert json.loads(answer.text)["duplicate"] is False


async def test_an_unknown_bulk_send_is_not_found(time_env: WorkflowEnvironment, sqlite_url: str) -> None:
    async with running_stack(time_env.client, sqlite_url) as stack, api_client(stack) as client:
        answer = await client.get("/v1/sends/no-such-send")
        assert answer.status_code == 404
        assert answer.json()["details"] == [{"field": "id", "message": "no send 'no-such-send'"}]


async def test_the_same_event_posted_at_once_is_stored_once_and_the_others_are_duplicates(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    event = {
        "id": "race-1",
        "type": "purchase",
        "contact": {"external_id": "race", "email": "race@example.com"},
        "occurred_at": "2026-11-22T10:15:00+01:00",
        "properties": {"order_id": "R-1"},
    }
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as client:
        answers = await asyncio.gather(*(client.post("/v1/events", json=event) for _ in range(6)))
        assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
        assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 5
        assert len({a.json()["event_id"] for a in answers}) == 1
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Event)) == 1
            assert await session.scalar(select(func.count()).select_from(Contact)) == 1


async def test_the_python_starter_refuses_unstorable_text_too(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack:
        with pytest.raises(IngestError) as refused:
            await stack.relance.upsert_contact({"external_id": "py-1", "first_name": "A\u0000"})
        assert refused.value.field == "first_name"
        with pytest.raises(IngestError) as refused:
            await stack.relance.send_event(
                {
                    "type": "purchase",
                    "contact": {"external_id": "py-2"},
                    "occurred_at": "2026-11-22T10:15:00+01:00",
                    "properties": {"order_id": "P-1", "note": "\ud800"},
                }
            )
        assert refused.value.field == "properties.note" and "surrogate" in refused.value.message
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Contact)) == 0
            assert await session.scalar(select(func.count()).select_from(Event)) == 0
