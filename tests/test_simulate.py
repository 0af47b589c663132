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


REFERRAL_STORY = SIMULATION / "referral"


@pytest.mark.feature("R-05")
@pytest.mark.feature("R-07")
@pytest.mark.feature("R-08")
@pytest.mark.feature("R-09")
@pytest.mark.feature("R-10")
@pytest.mark.feature("R-11")
@pytest.mark.feature("R-12")
@pytest.mark.feature("R-13")
@pytest.mark.feature("R-14")
@pytest.mark.feature("R-15")
@pytest.mark.feature("R-16")
@pytest.mark.feature("G-01")
@pytest.mark.feature("G-05")
@pytest.mark.feature("G-06")
def test_the_referral_story_of_the_examples_runs_as_a_simulation() -> None:
    """A sponsor invites three friends (examples/simulation/referral): one returns her purchase,
    one keeps it, one never comes. Driven by events only, the same a shop's backend sends."""
    result = simulate(
        "--scenarios", EXAMPLES / "scenarios",
        "--events", REFERRAL_STORY / "events.jsonl",
        "--contacts", REFERRAL_STORY / "contacts.csv",
        "--templates", EXAMPLES / "templates",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [json.loads(line) for line in (REFERRAL_STORY / "expected.jsonl").read_text().splitlines()]
    assert lines == expected
    program = {(e["journey"], e["message"]): (e["at"], e["contact"], e["status"]) for e in lines}
    # Invitations and one thank-you for the three, at the moment Sam sent them.
    for n, friend in enumerate(("lea", "max", "noe"), start=1):
        assert program[(f"inv-sam-{n}", "invitation")] == ("2026-10-02T18:30:00+02:00", friend, "sent")
    assert program[("binv-sam", "thank_you")] == ("2026-10-02T18:30:00+02:00", "sam", "sent")
    # Léa bought, then returned it within the 15 days: Sam hears it failed, no reward.
    assert program[("inv-sam-1", "reconciled_sponsor")] == ("2026-10-05T12:00:00+02:00", "sam", "sent")
    assert program[("inv-sam-1", "rejected_sponsor")] == ("2026-10-12T15:00:00+02:00", "sam", "sent")
    assert ("inv-sam-1", "reward_sponsor") not in program
    # Max kept it: validated 15 days after his purchase, Sam's card, a reminder 30 days later.
    assert program[("inv-sam-2", "validated_referee")] == ("2026-10-21T09:00:00+02:00", "max", "sent")
    assert program[("inv-sam-2", "reward_sponsor")] == ("2026-10-21T09:00:00+02:00", "sam", "sent")
    assert program[("reward-inv-sam-2", "delivery")] == ("2026-10-21T09:00:00+02:00", "sam", "sent")
    assert program[("inv-sam-2", "reward_reminder")] == ("2026-11-20T08:00:00+01:00", "sam", "sent")
    assert program[("inv-sam-2", "refer_again")] == ("2026-12-20T08:00:00+01:00", "sam", "sent")
    assert program[("reward-inv-sam-2", "expiry_warning")] == ("2027-10-14T09:00:00+02:00", "sam", "sent")
    assert program[("reward-inv-sam-2", "expired")] == ("2027-10-21T09:00:00+02:00", "sam", "sent")
    # Noé never came: one reminder (she opted in) a week later, then Sam is told after two.
    assert program[("inv-sam-3", "invitation_reminder")] == ("2026-10-09T18:30:00+02:00", "noe", "sent")
    assert program[("inv-sam-3", "inactive_referee")] == ("2026-10-16T18:30:00+02:00", "sam", "sent")
    assert sum(1 for e in lines if e["scenario"] == "referral_program" and e["contact"] == "sam") == 8
