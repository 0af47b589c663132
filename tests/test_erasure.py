"""Erasure (GDPR): a contact's journeys stop, their personal data goes, anonymous counts stay (O-06)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import JSON, String, Text, cast, func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from relance.models.points import EarnIn
from relance.models.tables import broadcast as broadcast_tables  # noqa: F401 (their tables join the metadata scanned below)
from relance.models.tables.base import Base
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery
from relance.models.tables.journey import JourneyRun
from relance.points.service import earn
from relance.simulation.run import time_skipping
from relance.workflows.journey import JourneyWorkflow
from tests.conftest import Stack, api_client, purchase, running_stack

DAY = timedelta(days=1)
SECRET = "erasure-test-secret"
JANE = {
    "first_name": "Janette",
    "last_name": "Quillebeuf",
    "phone": "+33612345678",
    "email": "janette.quillebeuf@example.com",
    "locale": "fr",
    "time_zone": "Europe/Paris",
}


async def deliveries_by_status(stack: Stack) -> Counter[tuple[str, str, str]]:
    async with stack.sessions() as session:
        rows = await session.execute(
            select(Delivery.message, Delivery.status, Delivery.channel, func.count()).group_by(
                Delivery.message, Delivery.status, Delivery.channel
            )
        )
        return Counter({(m, s, c): n for m, s, c, n in rows.all()})


async def mentions(stack: Stack, needle: str) -> list[str]:
    """Every text and JSON column of every table that holds ``needle`` (case-insensitive)."""
    found = []
    async with stack.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text | JSON):
                    continue
                hits = await session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(func.lower(cast(column, Text)).contains(needle.lower(), autoescape=True))
                )
                if hits:
                    found.append(f"{table.name}.{column.name}")
    return found


@pytest.mark.feature("O-06")
async def test_erasure_stops_journeys_purges_personal_data_and_keeps_counts(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with (
        running_stack(time_env.client, database_url, secret_key=SECRET, referral_thank_you="24h") as stack,
        api_client(stack) as http,
    ):
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(t0, order="J-1", contact="jane-42", **JANE))
        journey = accepted.journeys[0].workflow_id
        bob = await stack.relance.send_event(purchase(t0, order="B-1", contact="bob"))
        assert (await http.post("/v1/lists", json={"name": "vip", "contacts": ["jane-42", "bob"]})).is_success
        async with stack.sessions() as session, session.begin():
            await earn(
                session, EarnIn(key="pts-jane-42-1", contact="jane-42", points=50, reason="Janette's order")
            )
        code = await stack.relance.referral_code("jane-42")
        assert code.startswith("JANETTE-")
        await time_env.sleep(4 * DAY)  # both invites went out on day 3; the reminders wait for day 10
        invited = await stack.relance.invite_referees(
            "jane-42", [{"email": "fay@example.com", "first_name": "Fay"}]
        )
        [referral] = invited.referrals
        assert referral.status == "invited"
        sent = stack.channel.messages  # type: ignore[attr-defined]
        assert [m.to for m in sent].count(JANE["email"]) == 1
        for _ in range(100):  # Fay's invitation goes out from the referral's workflow, on its own time
            before = await deliveries_by_status(stack)
            if before[("invitation", "sent", "email")]:
                break
            await asyncio.sleep(0.1)
        assert before[("invite", "sent", "email")] == 2 and before[("invitation", "sent", "email")] == 1
        naming = len([m for m in sent if "Janette" in f"{m.subject} {m.text}"])
        assert naming == 2  # her own invite and Fay's invitation
        assert await mentions(stack, JANE["email"])  # the scan finds what is there

        erased = await http.delete("/v1/contacts/jane-42", params={"reason": "request 7"})
        assert erased.status_code == 200, erased.text
        report = erased.json()
        assert report["status"] == "erased" and report["journeys_cancelled"] == 1
        assert report["workflows_stopped"] >= 2  # the referral and its batch's thank-you
        assert report["rows"]["consents"] == 1 and report["rows"]["list_members"] == 1
        assert report["rows"]["sponsor_codes"] == 1 and report["rows"]["contacts"] == 1

        state = await stack.client.get_workflow_handle_for(JourneyWorkflow.run, journey).result()
        assert (state.status, state.end_reason) == ("cancelled", "cancelled: contact erased (request 7)")
        thanks = stack.client.get_workflow_handle(f"referral-thanks:{invited.batch_id}")
        assert (await thanks.describe()).status == WorkflowExecutionStatus.CANCELED
        await time_env.sleep(30 * DAY)  # past every reminder: nothing more goes to her
        async with time_skipping(stack.client):
            await stack.client.get_workflow_handle(bob.journeys[0].workflow_id).result()
        assert [m.to for m in sent].count(JANE["email"]) == 1
        assert len([m for m in sent if "Janette" in f"{m.subject} {m.text}"]) == naming

        after = await deliveries_by_status(stack)
        # Everything counted before is still counted; the journey's reminder is recorded as skipped,
        # Bob's reminder went out.
        assert after - before == Counter(
            {("reminder", "skipped", "email"): 1, ("reminder", "sent", "email"): 1}
        )
        assert not before - after
        for needle in [JANE["email"], JANE["phone"], "Janette", "Quillebeuf", "jane-42"]:
            assert await mentions(stack, needle) == [], needle

        async with stack.sessions() as session:
            gone = await session.scalar(select(Contact).where(Contact.external_id.startswith("erased:")))
            assert gone is not None and gone.erased_at is not None and gone.email is None
            runs = list(await session.scalars(select(JourneyRun).where(JourneyRun.contact_id == gone.id)))
            assert [(r.status, r.end_reason) for r in runs] == [
                ("cancelled", "cancelled: contact erased (request 7)")
            ]
            assert runs[0].workflow_id.startswith("journey:referral:post_purchase:erased%3A")

        # Later events for the tombstone are refused; the same id posted again is a new person.
        refused = await http.post(
            "/v1/contacts", json={"external_id": gone.external_id, "email": "x@example.com"}
        )
        assert refused.status_code == 422 and "erased" in refused.text
        again = await http.post(
            "/v1/contacts", json={"external_id": "jane-42", "email": "jane.new@example.com"}
        )
        assert again.json() == {"external_id": "jane-42", "created": True}
        async with stack.sessions() as session:
            fresh = await session.scalar(select(Contact).where(Contact.external_id == "jane-42"))
            assert fresh is not None and fresh.id != gone.id and fresh.first_name is None

        # Erasing the new one works too; the old id's erasure is then found as done.
        second = await http.delete("/v1/contacts/jane-42")
        assert second.json()["status"] == "erased"
        done = await http.delete("/v1/contacts/jane-42")
        assert done.status_code == 200
        assert done.json()["status"] == "already_erased" and "already erased" in done.json()["message"]
        unknown = await http.delete("/v1/contacts/nobody")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "no contact 'nobody': check the external id (nothing was erased)"


@pytest.mark.feature("O-06")
async def test_operators_erase_from_the_command_line(dev_env: WorkflowEnvironment, sqlite_url: str) -> None:
    async with running_stack(dev_env.client, sqlite_url, secret_key=SECRET) as stack:
        now = await dev_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(now, order="C-1", contact="cli-1", **JANE))
        env = {**os.environ, "RELANCE_DATABASE_URL": sqlite_url, "RELANCE_LOG_LEVEL": "warning",
               "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
               "RELANCE_TASK_QUEUE": stack.settings.task_queue, "RELANCE_SECRET_KEY": SECRET}  # fmt: skip

        def relance(*args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "relance.cli", "contacts", "erase", *args],
                                  input=answer, capture_output=True, text=True, env=env, timeout=90,
                                  cwd=Path(sqlite_url.removeprefix("sqlite:///")).parent)  # fmt: skip

        declined = await asyncio.to_thread(relance, "cli-1", answer="n\n")
        assert declined.returncode == 1 and "nothing was erased" in declined.stderr
        done = await asyncio.to_thread(relance, "cli-1", "--reason", "ticket 12", "--yes")
        assert done.returncode == 0, done.stderr
        assert "contact 'cli-1' erased" in done.stdout and "journeys cancelled: 1" in done.stdout
        state = await stack.client.get_workflow_handle_for(
            JourneyWorkflow.run, accepted.journeys[0].workflow_id
        ).result()
        assert (state.status, state.end_reason) == ("cancelled", "cancelled: contact erased (ticket 12)")

        twice = await asyncio.to_thread(relance, "cli-1", "--yes", "--json")
        assert twice.returncode == 0, twice.stderr
        assert json.loads(twice.stdout)["status"] == "already_erased"
        unknown = await asyncio.to_thread(relance, "nobody", "--yes")
        assert unknown.returncode == 1 and "no contact 'nobody'" in unknown.stderr
