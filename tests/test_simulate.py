"""``relance simulate``: the real journeys on the time-skipping server, as a dated timeline (J-10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

SIMULATION = EXAMPLES / "simulation"


def simulate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relance.cli", "simulate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.feature("J-10")
@pytest.mark.feature("R-01")
@pytest.mark.feature("R-03")
def test_example_simulation_prints_the_expected_timeline() -> None:
    result = simulate(
        "--scenarios", EXAMPLES / "scenarios",
        "--events", SIMULATION / "events.jsonl",
        "--contacts", SIMULATION / "contacts.csv",
        "--templates", EXAMPLES / "templates",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [json.loads(line) for line in (SIMULATION / "expected.jsonl").read_text().splitlines()]
    assert lines == expected
    # The story, spelled out: Ada gets both messages, 3 then 7 days apart, once despite
    # her order being posted twice; Bob referred a friend, so no reminder; Chloé left.
    by_contact = {(e["contact"], e["message"]): (e["at"], e["status"]) for e in lines}
    assert by_contact[("ada", "invite")] == ("2026-09-04T10:00:00+02:00", "sent")
    assert by_contact[("ada", "reminder")] == ("2026-09-11T10:00:00+02:00", "sent")
    assert by_contact[("bob", "invite")] == ("2026-09-05T09:30:00-04:00", "sent")
    assert by_contact[("bob", "reminder")] == ("2026-09-12T09:30:00-04:00", "skipped")
    assert by_contact[("chloe", "invite")] == ("2026-09-04T08:00:00+02:00", "skipped")
    assert len(lines) == 6
    assert set(lines[0]) == {
        "at",
        "contact",
        "scenario",
        "journey",
        "message",
        "channel",
        "status",
        "reason",
    }


def test_bad_event_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"type": "purchase", "contact": {"external_id": "a"}, "occurred_at": "2026-09-01T10:00:00+02:00", "properties": {"order_id": "1"}}\n'
        '{"type": "purchase", "contact": {"external_id": "b"},\n'
        '{"type": "purchase", "contact": {"external_id": "c", "email": "nope"}, "occurred_at": "2026-09-01T10:00:00+02:00"}\n'
    )
    result = simulate("--scenarios", EXAMPLES / "scenarios", "--events", events, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{events}:2: line: not valid JSON" in result.stderr
    assert f"{events}:3: contact.email: 'nope' is not a valid email address" in result.stderr
