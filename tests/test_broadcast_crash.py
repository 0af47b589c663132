"""A worker killed in the middle of a bulk send: the next one finishes it, nobody gets it twice (B-06)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from relance.broadcasts.service import Broadcasts
from relance.models.broadcast import BroadcastIn
from relance.workflows.broadcast import BroadcastWorkflow
from tests.conftest import api_client, free_port, running_stack
from tests.smtp_peer import Inbox, start_smtp
from tests.test_crash import start_worker

PEOPLE = [f"p{n:02d}" for n in range(40)]


@pytest.mark.feature("B-06")
async def test_a_worker_killed_mid_send_leaves_no_duplicate(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    templates = tmp_path / "templates" / "news"
    templates.mkdir(parents=True)
    (templates / "spring.subject.j2").write_text("Spring")
    (templates / "spring.txt.j2").write_text("Offers. Unsubscribe: {{ links.unsubscribe }}")
    port = free_port()
    worker = None

    def kill_worker(_envelope: object) -> None:
        # The 12th message reached the server; the worker dies before hearing "250".
        if worker is not None and len(inbox.envelopes) == 12:
            os.kill(worker.pid, signal.SIGKILL)

    inbox = Inbox(on_data=kill_worker)
    controller = start_smtp(inbox, port)
    queue = f"bulk-crash-{uuid.uuid4().hex[:8]}"
    env_vars = {
        "RELANCE_DATABASE_URL": sqlite_url,
        "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "RELANCE_TASK_QUEUE": queue,
        "RELANCE_EMAIL_CHANNEL": "smtp",
        "RELANCE_SMTP_HOST": "127.0.0.1",
        "RELANCE_SMTP_PORT": str(port),
        "RELANCE_TEMPLATES_DIR": str(tmp_path / "templates"),
        "RELANCE_PRESSURE_MAX_PER_DAY": "0",
        "RELANCE_LOG_LEVEL": "warning",
    }
    log = tmp_path / "worker.log"
    try:
        worker = start_worker(env_vars, log)
        async with running_stack(
            dev_env.client, sqlite_url, templates_dir=tmp_path / "templates",
            broadcast_safety_delay_seconds=0, broadcast_batch_size=15, broadcast_rate_per_second=1000,
        ) as stack, api_client(stack) as http:  # fmt: skip
            for who in PEOPLE:
                await http.post("/v1/contacts", json={"external_id": who, "email": f"{who}@example.com",
                                                      "consents": {"email": {"marketing": True}}})  # fmt: skip
            await http.post("/v1/lists", json={"name": "All", "contacts": PEOPLE})
            # The in-process stack's own worker polls another queue: the subprocess does the work.
            settings = stack.settings.model_copy(update={"task_queue": queue})
            state = await Broadcasts(stack.client, stack.sessions, settings).schedule(
                BroadcastIn.model_validate(
                    {"name": "All", "audience": {"list": "All"}, "template": "news/spring"}
                )
            )
            await asyncio.to_thread(worker.wait, 60)
            assert worker.returncode == -signal.SIGKILL, log.read_text()

            worker = start_worker(env_vars, log)  # the replacement resumes the send
            handle = stack.client.get_workflow_handle_for(
                BroadcastWorkflow.run, f"broadcast:{state.broadcast_id}"
            )
            done = await asyncio.wait_for(handle.result(), 90)
    finally:
        controller.stop()
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(10)

    received = [to for e in inbox.envelopes for to in e.rcpt_tos]
    assert len(received) == len(set(received)), "someone got the message twice"
    report = done.report
    assert report is not None and report.processed == len(PEOPLE)
    # Only messages in flight when the worker died are left unconfirmed, never resent.
    assert report.sent + report.failed == len(PEOPLE)
    assert 1 <= report.failed <= 20
    assert len(received) >= report.sent
