"""Bulk sends to a list: safety delay, reschedule/cancel, suppression, dedupe, pacing, report (B-01 … B-06)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from relance.channels.base import OutgoingMessage, SendResult, TransientSendError
from relance.channels.memory import CaptureChannel
from relance.models.broadcast import BroadcastState
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery
from relance.simulation.run import time_skipping
from relance.workflows.broadcast import BroadcastWorkflow
from tests.conftest import Stack, api_client, running_stack

PEOPLE: list[dict[str, Any]] = [
    {"external_id": "ana", "email": "ana@example.com", "phone": "+33611111111",
     "consents": {"email": {"marketing": True}, "sms": {"marketing": True}}},
    {"external_id": "bob", "email": "bob@example.com"},  # no opt-in
    {"external_id": "cy", "email": "cy@example.com", "consents": {"email": {"marketing": True}}},
    {"external_id": "ana-again", "email": "ANA@example.com", "consents": {"email": {"marketing": True}}},
    {"external_id": "dee", "email": "dee@example.com", "phone": "+33622222222",
     "attributes": {"preferred_channel": "sms"},
     "consents": {"email": {"marketing": True}, "sms": {"marketing": True}}},
]  # fmt: skip


@pytest.fixture
def spring(tmp_path: Path) -> Path:
    templates = tmp_path / "templates" / "news"
    templates.mkdir(parents=True)
    (templates / "spring.subject.j2").write_text("Spring is here, {{ contact.first_name or 'friend' }}")
    (templates / "spring.txt.j2").write_text("Our spring offers. Unsubscribe: {{ links.unsubscribe }}")
    (templates / "spring.sms.j2").write_text("Spring offers at the club! STOP: {{ links.unsubscribe }}")
    return tmp_path / "templates"


async def audience(http: httpx.AsyncClient) -> None:
    for person in PEOPLE:
        assert (await http.post("/v1/contacts", json=person)).status_code == 200
    created = await http.post(
        "/v1/lists", json={"name": "Spring", "contacts": [p["external_id"] for p in PEOPLE]}
    )
    assert created.status_code == 201, created.text


async def daytime(env: WorkflowEnvironment) -> None:
    """Move the test server's clock to 10:00 in Paris when it is late: sends stay on one day."""
    now = (await env.get_current_time()).astimezone(ZoneInfo("Europe/Paris"))
    if not 7 <= now.hour < 20:
        ten = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
        await env.sleep(ten - now)


async def finish(stack: Stack, broadcast_id: str) -> BroadcastState:
    handle = stack.client.get_workflow_handle_for(BroadcastWorkflow.run, f"broadcast:{broadcast_id}")
    async with time_skipping(stack.client):
        return await handle.result()


def sent_to(stack: Stack) -> list[str]:
    return sorted(m.to for m in stack.channel.messages)  # type: ignore[attr-defined]


@pytest.mark.feature("B-01")
@pytest.mark.feature("B-05")
async def test_a_send_reaches_each_eligible_person_once_and_reports_the_rest(
    time_env: WorkflowEnvironment, database_url: str, spring: Path
) -> None:
    async with running_stack(time_env.client, database_url, templates_dir=spring) as stack:
        async with api_client(stack) as http:
            await daytime(time_env)
            await audience(http)
            async with stack.sessions() as session, session.begin():  # cy unsubscribed meanwhile
                await session.execute(
                    update(Contact)
                    .where(Contact.external_id == "cy")
                    .values(unsubscribed_at=Contact.created_at)
                )
            answer = await http.post(
                "/v1/sends",
                json={"name": "Spring", "audience": {"list": "Spring"}, "template": "news/spring"},
            )
            assert answer.status_code == 202, answer.text
            scheduled = answer.json()
            assert scheduled["status"] == "scheduled"
            # A second send the same day: the daily cap of marketing messages holds it back.
            at = await time_env.get_current_time() + timedelta(minutes=20)
            again = await http.post(
                "/v1/sends", json={"name": "Again", "audience": {"list": "Spring"}, "template": "news/spring",
                                   "at": at.isoformat()},
            )  # fmt: skip
            listed = (await http.get("/v1/sends")).json()
            assert [s["broadcast_id"] for s in listed] == [
                scheduled["broadcast_id"],
                again.json()["broadcast_id"],
            ]
            assert sent_to(stack) == []  # the safety delay: nothing generated yet
            done = await finish(stack, scheduled["broadcast_id"])

            assert done.status == "completed"
            assert done.recipients == 4  # ANA@example.com and ana@example.com are one person
            assert done.report is not None
            assert done.report.model_dump() == {
                "processed": 4,
                "sent": 2,
                "failed": 0,
                "suppressed": {
                    "no marketing opt-in for email": 1,
                    "contact unsubscribed from marketing": 1,
                },
            }
            assert sent_to(stack) == ["ana@example.com", "dee@example.com"]
            second = await finish(stack, again.json()["broadcast_id"])
            assert (await http.get("/v1/sends")).json() == []  # finished sends leave the list
            assert second.report is not None and second.report.sent == 0
            assert (
                sum(n for r, n in second.report.suppressed.items() if r.startswith("commercial pressure"))
                == 2
            )


@pytest.mark.feature("B-01")
async def test_sms_both_and_preferred_channels(
    time_env: WorkflowEnvironment, sqlite_url: str, spring: Path
) -> None:
    async with running_stack(
        time_env.client, sqlite_url, templates_dir=spring, pressure_max_per_day=0, default_time_zone="UTC"
    ) as stack, api_client(stack) as http:  # fmt: skip
        await audience(http)
        now = await time_env.get_current_time()
        noon = now.replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)  # inside SMS hours
        results = {}
        for mode in ("sms", "both", "preferred"):
            answer = await http.post(
                "/v1/sends", json={"name": mode, "audience": {"list": "Spring"}, "template": "news/spring",
                                   "channels": mode, "at": noon.isoformat()},
            )  # fmt: skip
            assert answer.status_code == 202, answer.text
            results[mode] = answer.json()["broadcast_id"]
            noon += timedelta(hours=1)
        for mode, broadcast_id in results.items():
            before = len(stack.channel.messages)  # type: ignore[attr-defined]
            await finish(stack, broadcast_id)
            batch = stack.channel.messages[before:]  # type: ignore[attr-defined]
            results[mode] = sorted(m.to for m in batch)
    assert results == {
        "sms": ["+33611111111", "+33622222222"],
        "both": ["+33611111111", "+33622222222", "ana@example.com", "cy@example.com", "dee@example.com"],
        "preferred": ["+33622222222", "ana@example.com", "cy@example.com"],  # dee prefers SMS
    }


@pytest.mark.feature("B-02")
@pytest.mark.feature("B-03")
async def test_until_generated_a_send_can_be_moved_or_cancelled(
    time_env: WorkflowEnvironment, sqlite_url: str, spring: Path
) -> None:
    async with (
        running_stack(time_env.client, sqlite_url, templates_dir=spring) as stack,
        api_client(stack) as http,
    ):
        await audience(http)
        now = await time_env.get_current_time()
        body = {"name": "Spring", "audience": {"list": "Spring"}, "template": "news/spring"}
        past = await http.post("/v1/sends", json={**body, "at": (now - timedelta(hours=1)).isoformat()})
        assert past.status_code == 422 and "is in the past" in past.json()["error"]

        one = (await http.post("/v1/sends", json=body)).json()
        assert abs((BroadcastState.model_validate(one).send_at - now) - timedelta(minutes=15)) < timedelta(
            seconds=30
        )
        moved = await http.post(f"/v1/sends/{one['broadcast_id']}/reschedule",
                                json={"at": (now - timedelta(minutes=1)).isoformat()})  # fmt: skip
        assert moved.status_code == 409 and "in the past" in moved.json()["error"]
        later = now + timedelta(days=2)
        moved = await http.post(f"/v1/sends/{one['broadcast_id']}/reschedule", json={"at": later.isoformat()})
        assert moved.status_code == 200, moved.text
        assert BroadcastState.model_validate(moved.json()).send_at == later
        cancelled = await http.post(f"/v1/sends/{one['broadcast_id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        assert (await finish(stack, one["broadcast_id"])).status == "cancelled"
        assert sent_to(stack) == []

        two = (await http.post("/v1/sends", json=body)).json()
        await finish(stack, two["broadcast_id"])
        too_late = await http.post(f"/v1/sends/{two['broadcast_id']}/cancel")
        assert too_late.status_code == 409 and "too late to cancel" in too_late.json()["error"]
        unknown = await http.post("/v1/lists/Nope/archive")
        assert unknown.status_code == 404
        nowhere = await http.post("/v1/sends", json={**body, "audience": {"list": "Nope"}})
        assert nowhere.status_code == 422 and nowhere.json()["error"] == "no list named 'Nope'"


@pytest.mark.feature("B-04")
async def test_test_send_goes_to_the_marketer_only(
    time_env: WorkflowEnvironment, sqlite_url: str, spring: Path, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    async with running_stack(
        time_env.client, sqlite_url, templates_dir=spring, email_channel="file", outbox_file=outbox
    ) as stack, api_client(stack) as http:  # fmt: skip
        answer = await http.post(
            "/v1/sends/test", json={"template": "news/spring", "to": "marketer@shop.example"}
        )
        assert answer.status_code == 200, answer.text
        async with stack.sessions() as session:
            assert list(await session.scalars(select(Delivery))) == []  # not a real send
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(m["to"], m["subject"]) for m in lines] == [
        ("marketer@shop.example", "[TEST] Spring is here, Camille")
    ]


class FlakyChannel(CaptureChannel):
    """Refuses the 7th message once, as a provider outage would, after six went out."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.calls += 1
        if self.calls == 7:
            raise TransientSendError("503 from the provider")
        return await super().send(message)


@pytest.mark.feature("B-06")
async def test_paced_batches_resume_after_a_failure_without_sending_twice(
    time_env: WorkflowEnvironment, sqlite_url: str, spring: Path
) -> None:
    channel = FlakyChannel()
    async with running_stack(
        time_env.client, sqlite_url, templates_dir=spring, channel=channel,
        broadcast_batch_size=10, broadcast_rate_per_second=20, pressure_max_per_day=0,
    ) as stack, api_client(stack) as http:  # fmt: skip
        people = [f"p{n:02d}" for n in range(25)]
        for who in people:
            await http.post("/v1/contacts", json={"external_id": who, "email": f"{who}@example.com",
                                                  "consents": {"email": {"marketing": True}}})  # fmt: skip
        await http.post("/v1/lists", json={"name": "Many", "contacts": people})
        answer = await http.post("/v1/sends", json={"name": "Many", "audience": {"list": "Many"},
                                                    "template": "news/spring"})  # fmt: skip
        started = time.monotonic()
        done = await finish(stack, answer.json()["broadcast_id"])
        elapsed = time.monotonic() - started
    assert done.report is not None and (done.report.sent, done.report.processed) == (25, 25)
    assert sorted(m.to for m in channel.messages) == sorted(f"{p}@example.com" for p in people)
    assert elapsed >= 24 / 20 * 0.9  # paced at 20 messages a second


@pytest.mark.feature("B-03")
async def test_sends_from_the_command_line(
    dev_env: WorkflowEnvironment, sqlite_url: str, spring: Path
) -> None:
    async with (
        running_stack(dev_env.client, sqlite_url, templates_dir=spring) as stack,
        api_client(stack) as http,
    ):
        await audience(http)
        env = {
            **os.environ,
            "RELANCE_DATABASE_URL": sqlite_url,
            "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "RELANCE_TASK_QUEUE": stack.settings.task_queue,
            "RELANCE_TEMPLATES_DIR": str(spring),
            "RELANCE_LOG_LEVEL": "warning",
        }

        def relance(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "relance.cli", "sends", *args], capture_output=True,
                                  text=True, env=env, timeout=60)  # fmt: skip

        made = await asyncio.to_thread(relance, "create", "--name", "Spring", "--list", "Spring",
                                       "--template", "news/spring")  # fmt: skip
        assert made.returncode == 0, made.stderr
        broadcast_id = json.loads(made.stdout)["broadcast_id"]
        listed = await asyncio.to_thread(relance, "list")
        assert broadcast_id in listed.stdout and "scheduled" in listed.stdout
        past = await asyncio.to_thread(relance, "reschedule", broadcast_id, "--at", "2020-01-01T09:00+01:00")
        assert past.returncode == 1 and "is in the past: pick a later time" in past.stderr
        naive = await asyncio.to_thread(relance, "reschedule", broadcast_id, "--at", "2030-01-01T09:00")
        assert naive.returncode == 2 and "time zone" in naive.stderr
        cancelled = await asyncio.to_thread(relance, "cancel", broadcast_id)
        assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["status"] == "cancelled"
        no_list = await asyncio.to_thread(relance, "create", "--name", "X", "--list", "Nope", "--template",
                                          "news/spring")  # fmt: skip
        assert no_list.returncode == 1 and "audience.list: no list named 'Nope'" in no_list.stderr


@pytest.mark.feature("B-01")
@pytest.mark.feature("C-06")
async def test_a_send_to_a_segment_or_a_default_filter(
    time_env: WorkflowEnvironment, sqlite_url: str, spring: Path
) -> None:
    async with running_stack(
        time_env.client, sqlite_url, templates_dir=spring, pressure_max_per_day=0
    ) as stack, api_client(stack) as http:  # fmt: skip
        for who, club in (("ana", "Lyon"), ("ben", "Paris"), ("cyd", "Lyon")):
            await http.post("/v1/contacts", json={"external_id": who, "email": f"{who}@example.com",
                                                  "attributes": {"club": club},
                                                  "consents": {"email": {"marketing": True}}})  # fmt: skip
        lyon = await http.post("/v1/sends", json={"name": "Lyon", "template": "news/spring",
                                                  "audience": {"segment": {"club": ["Lyon"]}}})  # fmt: skip
        assert lyon.status_code == 202, lyon.text
        await finish(stack, lyon.json()["broadcast_id"])
        assert sent_to(stack) == ["ana@example.com", "cyd@example.com"]
        everyone = await http.post("/v1/sends", json={"name": "All", "template": "news/spring",
                                                      "audience": {"builtin": "all"}})  # fmt: skip
        done = await finish(stack, everyone.json()["broadcast_id"])
        assert done.report is not None and done.report.sent == 3
        for bad, field in (({"builtin": "/etc/relance/secret.yaml"}, "audience.builtin"),
                           ({"segment": {"colour": ["red"]}}, "audience.segment")):  # fmt: skip
            refused = await http.post(
                "/v1/sends", json={"name": "X", "template": "news/spring", "audience": bad}
            )
            assert refused.status_code == 422 and refused.json()["details"][0]["field"] == field, refused.text


@pytest.mark.feature("J-09")
async def test_a_long_send_continues_as_new_and_keeps_each_history_short(
    time_env: WorkflowEnvironment, sqlite_url: str, spring: Path
) -> None:
    async with running_stack(
        time_env.client, sqlite_url, templates_dir=spring, broadcast_batch_size=3, broadcast_batches_per_run=2,
        broadcast_rate_per_second=1000, broadcast_safety_delay_seconds=0, pressure_max_per_day=0,
    ) as stack, api_client(stack) as http:  # fmt: skip
        people = [f"q{n:02d}" for n in range(14)]  # 5 batches of 3: two runs of 2 batches, then one
        for who in people:
            await http.post("/v1/contacts", json={"external_id": who, "email": f"{who}@example.com",
                                                  "consents": {"email": {"marketing": True}}})  # fmt: skip
        await http.post("/v1/lists", json={"name": "Long", "contacts": people})
        answer = await http.post("/v1/sends", json={"name": "Long", "audience": {"list": "Long"},
                                                    "template": "news/spring"})  # fmt: skip
        done = await finish(stack, answer.json()["broadcast_id"])  # the handle follows the new runs
        wf_id = f"broadcast:{answer.json()['broadcast_id']}"
        # Walk the chain of runs back from the last one.
        run_id: str | None = (await stack.client.get_workflow_handle(wf_id).describe()).run_id
        histories = []
        while run_id:
            history = await stack.client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
            histories.insert(0, history)
            run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    assert done.report is not None and (done.report.sent, done.report.processed) == (14, 14)
    assert done.recipients == 14 and done.status == "completed"
    assert sorted(m.to for m in stack.channel.messages) == sorted(f"{p}@example.com" for p in people)
    batches = [
        sum(
            1
            for e in h.events
            if e.activity_task_scheduled_event_attributes.activity_type.name == "send_batch"
        )
        for h in histories
    ]
    assert batches == [2, 2, 1]  # each run's history holds at most two batches
    ended = [h.events[-1].event_type for h in histories]
    assert ended[:2] == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW] * 2
    assert ended[2] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
