"""A worker killed between the send and the record: exactly one message reaches SMTP (D-07)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.models.tables.delivery import Delivery
from relance.workflows.journey import JourneyWorkflow
from tests.conftest import EXAMPLES, free_port, purchase, quick_scenario, running_stack
from tests.smtp_peer import Inbox, start_smtp


def start_worker(env_vars: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relance.cli", "worker"],
        env={**os.environ, **env_vars},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.feature("D-07")
async def test_worker_killed_after_send_before_record_sends_once(
    dev_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    scenarios = quick_scenario(tmp_path / "scenarios", reminder=None)
    port = free_port()
    worker: subprocess.Popen[bytes] | None = None

    def kill_worker(_envelope: object) -> None:
        # The server has the message; the worker dies before it hears "250".
        if worker is not None and len(inbox.envelopes) == 1:
            os.kill(worker.pid, signal.SIGKILL)

    inbox = Inbox(on_data=kill_worker)
    controller = start_smtp(inbox, port)
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    env_vars = {
        "RELANCE_DATABASE_URL": sqlite_url,
        "RELANCE_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "RELANCE_TASK_QUEUE": queue,
        "RELANCE_CHANNEL": "smtp",
        "RELANCE_SMTP_HOST": "127.0.0.1",
        "RELANCE_SMTP_PORT": str(port),
        "RELANCE_TEMPLATES_DIR": str(EXAMPLES / "templates"),
        "RELANCE_DELIVERY_TIMEOUT_SECONDS": "3",
    }
    log = tmp_path / "worker.log"
    try:
        worker = start_worker(env_vars, log)
        async with running_stack(
            dev_env.client, sqlite_url, scenarios_dir=scenarios, delivery_timeout_seconds=3
        ) as stack:
            # The in-process stack only starts journeys: its worker polls another queue.
            stack.relance.ingestor.task_queue = queue
            t0 = await dev_env.get_current_time()
            accepted = await stack.relance.send_event(purchase(t0, order="K-1", contact="k-1"))
            wf_id = accepted.journeys[0].workflow_id
            await asyncio.to_thread(worker.wait, 30)
            assert worker.returncode == -signal.SIGKILL, log.read_text()
            assert len(inbox.envelopes) == 1

            worker = start_worker(env_vars, log)  # the replacement picks up the retry
            handle = stack.client.get_workflow_handle_for(JourneyWorkflow.run, wf_id)
            state = await asyncio.wait_for(handle.result(), 60)
            async with stack.sessions() as session:
                row = await session.scalar(select(Delivery).where(Delivery.workflow_id == wf_id))
    finally:
        controller.stop()
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(10)

    assert len(inbox.envelopes) == 1, "the message was sent twice"
    assert row is not None and row.status == "unconfirmed"
    assert row.attempts == 1
    assert [o.status.value for o in state.steps_done] == ["unconfirmed"]
