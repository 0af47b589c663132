"""Lists and their salesperson (C-05 basics) and messages signed by that salesperson (D-10)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from relance.models.tables.list import ListMember
from relance.simulation.run import time_skipping
from tests.conftest import api_client, purchase, running_stack

SCENARIO = """\
scenario: advice
journeys:
  - id: follow_up
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: personal
        template: advice/personal
        delay: 1 day
        sender: salesperson
"""


@pytest.fixture
def advice(tmp_path: Path) -> tuple[Path, Path]:
    scenarios, templates = tmp_path / "scenarios", tmp_path / "templates" / "advice"
    scenarios.mkdir()
    templates.mkdir(parents=True)
    (scenarios / "advice.yaml").write_text(SCENARIO)
    (templates / "personal.subject.j2").write_text("A word from {{ sender.name }}")
    (templates / "personal.txt.j2").write_text(
        "Hello {{ contact.first_name }},\nhow is it going?\n-- \n{{ sender.name }} <{{ sender.email }}>\n"
        "Unsubscribe: {{ links.unsubscribe }}\n"
    )
    return scenarios, tmp_path / "templates"


@pytest.mark.feature("D-10")
async def test_messages_to_a_list_are_sent_and_signed_by_its_salesperson(
    time_env: WorkflowEnvironment, sqlite_url: str, advice: tuple[Path, Path]
) -> None:
    scenarios, templates = advice
    async with (
        running_stack(
            time_env.client, sqlite_url, scenarios_dir=scenarios, templates_dir=templates,
            email_from="Shop <shop@example.com>",
        ) as stack,
        api_client(stack) as http,
    ):  # fmt: skip
        for who in ("ana", "bob", "cy"):
            saved = await http.post("/v1/contacts", json={"external_id": who, "email": f"{who}@example.com",
                                                          "first_name": who.title(),
                                                          "consents": {"email": {"marketing": True}}})  # fmt: skip
            assert saved.status_code == 200, saved.text
        created = await http.post(
            "/v1/lists",
            json={"name": "Lyon club", "contacts": ["ana", "cy"],
                  "salesperson": {"name": "Léa Dubois", "email": "lea.dubois@shop.example"}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.json() == {
            "name": "Lyon club", "members": 2, "archived": False,
            "salesperson": {"name": "Léa Dubois", "email": "lea.dubois@shop.example"},
        }  # fmt: skip
        # Cy's list is archived before the message: she gets the default sender.
        assert (await http.post("/v1/lists/Other/archive")).status_code == 404
        await http.post("/v1/lists", json={"name": "Archived", "contacts": ["bob"],
                                           "salesperson": {"name": "Max", "email": "max@shop.example"}})  # fmt: skip
        assert (await http.post("/v1/lists/Archived/archive")).json()["archived"] is True

        t0 = await time_env.get_current_time()
        handles = []
        for who in ("ana", "bob"):
            accepted = await stack.relance.send_event(purchase(t0, order=f"{who}-1", contact=who))
            handles.append(stack.client.get_workflow_handle(accepted.journeys[0].workflow_id))
        async with time_skipping(stack.client):
            for handle in handles:
                await handle.result()

    sent = {m.to: m for m in stack.channel.messages}  # type: ignore[attr-defined]
    assert sent["ana@example.com"].sender == "Léa Dubois <lea.dubois@shop.example>"
    assert sent["ana@example.com"].subject == "A word from Léa Dubois"
    assert "-- \nLéa Dubois <lea.dubois@shop.example>\n" in sent["ana@example.com"].text
    assert sent["bob@example.com"].sender == "Shop <shop@example.com>"
    assert "-- \nShop <shop@example.com>\n" in sent["bob@example.com"].text


@pytest.mark.feature("C-05")
async def test_lists_are_archived_never_deleted_and_refuse_bad_requests(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        await http.post("/v1/contacts", json={"external_id": "ana", "email": "ana@example.com"})
        unnamed = await http.post("/v1/lists", json={})
        assert unnamed.status_code == 201 and re.fullmatch(r"L\d{10}", unnamed.json()["name"])
        assert (await http.post("/v1/lists", json={"name": "VIP", "contacts": ["ana"]})).status_code == 201
        duplicate = await http.post("/v1/lists", json={"name": "VIP"})
        assert duplicate.status_code == 409
        assert duplicate.json()["error"] == "a list named 'VIP' exists already: pick another name"

        unknown = await http.post("/v1/lists/VIP/members", json={"contacts": ["ana", "ghost"]})
        assert unknown.status_code == 422
        assert unknown.json()["details"] == [
            {"field": "contacts", "message": "unknown contact(s): ghost; nobody was added"}
        ]
        bad_email = await http.put("/v1/lists/VIP/salesperson", json={"name": "Léa", "email": "not-an-email"})
        assert bad_email.status_code == 422 and bad_email.json()["details"][0]["field"] == "email"

        assert (await http.post("/v1/lists/VIP/archive")).json()["archived"] is True
        back = await http.post("/v1/lists/VIP/reactivate")
        assert back.json() == {"name": "VIP", "members": 1, "archived": False, "salesperson": None}
        assert (await http.get("/v1/lists/Nope")).status_code == 404
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ListMember)) == 1

        await http.post("/v1/contacts", json={"external_id": "bob", "email": "bob@example.com"})
        await http.post("/v1/lists", json={"name": "Lyon", "contacts": ["ana", "bob"]})
        merged = await http.post("/v1/lists/merge", json={"sources": ["VIP", "Lyon"], "name": "All"})
        assert merged.status_code == 201, merged.text
        assert merged.json()["members"] == 2  # ana is in both: once
        assert (await http.get("/v1/lists/VIP")).json()["members"] == 1  # sources are left alone
        one = await http.post("/v1/lists/merge", json={"sources": ["VIP"]})
        assert one.status_code == 422 and one.json()["details"][0]["field"] == "sources"
        ghost = await http.post("/v1/lists/merge", json={"sources": ["VIP", "Ghost"]})
        assert ghost.status_code == 404 and ghost.json()["error"] == "no list named 'Ghost'"


@pytest.mark.feature("D-10")
def test_lists_from_the_command_line(sqlite_url: str) -> None:
    env = {**os.environ, "RELANCE_DATABASE_URL": sqlite_url, "RELANCE_LOG_LEVEL": "warning"}

    def relance(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "relance.cli", *args], capture_output=True, text=True,
                              env=env, timeout=60)  # fmt: skip

    made = relance("lists", "create", "Lyon")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {"name": "Lyon", "members": 0, "archived": False, "salesperson": None}
    missing = relance("lists", "add", "Lyon", "ana")
    assert missing.returncode == 1 and "contacts: unknown contact(s): ana; nobody was added" in missing.stderr
    assigned = relance("lists", "assign", "Lyon", "--name", "Léa Dubois", "--email", "lea@shop.example")
    assert json.loads(assigned.stdout)["salesperson"] == {"name": "Léa Dubois", "email": "lea@shop.example"}
    wrong = relance("lists", "assign", "Lyon", "--name", "Léa", "--email", "lea-at-shop")
    assert wrong.returncode == 2 and "salesperson: email:" in wrong.stderr
    assert json.loads(relance("lists", "archive", "Lyon").stdout)["archived"] is True
    relance("lists", "create", "Paris")
    merged = relance("lists", "merge", "Lyon", "Paris", "--into", "France")
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["name"] == "France"
    assert relance("lists", "show", "Nope").returncode == 1
