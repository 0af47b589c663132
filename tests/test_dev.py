"""``relance dev``: the embedded stack starts, runs a journey, stops on Ctrl-C, and resumes (O-01)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES, free_port, quick_scenario


class DevStack:
    def __init__(self, tmp: Path) -> None:
        scenarios = quick_scenario(tmp / "scenarios")
        self.api_port, self.ui_port, self.temporal_port = free_port(), free_port(), free_port()
        self.output = tmp / "dev.out"
        self.env = {
            **os.environ,
            "RELANCE_DATA_DIR": str(tmp / "state"),
            "RELANCE_API_PORT": str(self.api_port),
            "RELANCE_TEMPORAL_UI_PORT": str(self.ui_port),
            "RELANCE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "RELANCE_SCENARIOS_DIR": str(scenarios),
            "RELANCE_TEMPLATES_DIR": str(EXAMPLES / "templates"),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relance.cli", "dev", *args],
            env=self.env,
            stdout=self.output.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        self.wait_for("Press Ctrl-C", 90, count=self.starts)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for(self, fragment: str, seconds: float, count: int = 1) -> None:
        deadline = time.monotonic() + seconds
        while self.text().count(fragment) < count:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"relance dev exited {self.process.returncode}:\n{self.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"'{fragment}' not seen after {seconds}s:\n{self.text()}")
            time.sleep(0.2)

    def interrupt(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}{path}"


@pytest.mark.feature("O-01")
def test_dev_stack_runs_a_journey_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    stack = DevStack(tmp_path)
    stack.start()
    try:
        assert f"http://127.0.0.1:{stack.ui_port}" in stack.text()
        ui = httpx.get(f"http://127.0.0.1:{stack.ui_port}/", timeout=10)
        assert ui.status_code == 200  # the Temporal Web UI
        now = httpx.post(
            stack.url("/v1/events"),
            json={
                "type": "purchase",
                "contact": {
                    "external_id": "dev-2",
                    "email": "dev2@example.com",
                    "first_name": "Ines",
                    "consents": {"email": {"marketing": True}},
                },
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                "properties": {"order_id": "D-2"},
            },
            timeout=30,
        )
        assert now.status_code == 202, now.text
        wf_id = now.json()["journeys"][0]["workflow_id"]
        stack.wait_for("EMAIL to dev2@example.com", 60)
        assert "Subject: Ines, share the love and get rewarded" in stack.text()
    finally:
        code = stack.interrupt()
    assert code == 0, stack.text()
    assert stack.text().rstrip().endswith("stopped")
    assert (tmp_path / "state" / "temporal.db").exists()
    assert (tmp_path / "state" / "relance.db").exists()

    stack.start()  # the same files: the same journeys
    try:
        state = httpx.get(stack.url(f"/v1/journeys/{wf_id}"), timeout=30).json()
        assert state["status"] == "running"
        assert state["current_step"] == "reminder"
        assert [s["step"] for s in state["steps_done"]] == ["invite"]
        again = httpx.post(
            stack.url("/v1/events"),
            json={
                "type": "purchase",
                "contact": {"external_id": "dev-2"},
                "occurred_at": "2026-01-01T00:00:00+00:00",
                "properties": {"order_id": "D-2"},
            },
            timeout=30,
        )
        assert again.json()["journeys"][0]["status"] == "duplicate"
    finally:
        assert stack.interrupt() == 0, stack.text()


@pytest.mark.feature("O-01")
def test_the_demo_shows_the_invitations_then_the_reminders_as_the_readme_says(tmp_path: Path) -> None:
    stack = DevStack(tmp_path)
    stack.start("--demo")
    try:
        for person in ("ada", "linus", "grace"):
            stack.wait_for(f"EMAIL to {person}@example.com", 60)
        # 20 s after each invitation; Grace referred a friend meanwhile, so hers is skipped.
        stack.wait_for("EMAIL to ada@example.com", 60, count=2)
        stack.wait_for("EMAIL to linus@example.com", 60, count=2)
        stack.wait_for("delivery.skipped", 30)
    finally:
        code = stack.interrupt()
    assert code == 0, stack.text()
    output = stack.text()
    assert output.count("EMAIL to grace@example.com") == 1
    assert "commercial pressure" not in output
