"""SMS go out between 09:00 and 22:00 in the contact's time zone, else later (D-05)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.delivery.sms_hours import next_opening

SCENARIO = """\
scenario: club
journeys:
  - id: booking
    trigger: {event: booking, ref: booking_id}
    messages:
      - id: confirmation
        channel: sms
        template: club/confirmation
        purpose: transactional
  - id: signature
    trigger: {event: booking, ref: booking_id}
    messages:
      - id: code
        channel: sms
        template: club/code
        purpose: legal
        ignore_sms_hours: true  # the contact is waiting for it, whatever the hour
"""


def run_simulation(tmp_path: Path, events: list[dict[str, object]]) -> list[dict[str, object]]:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "club.yaml").write_text(SCENARIO)
    (tmp_path / "templates" / "club").mkdir(parents=True)
    (tmp_path / "templates" / "club" / "confirmation.sms.j2").write_text(
        "Booked: {{ event.properties.booking_id }}"
    )
    (tmp_path / "templates" / "club" / "code.sms.j2").write_text("Code 123456")
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "contacts.csv").write_text(
        "external_id,phone,time_zone\nparis,+33612345678,Europe/Paris\ntoronto,+14165550100,America/Toronto\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "relance.cli", "simulate", "--scenarios", str(tmp_path / "scenarios"),
         "--templates", str(tmp_path / "templates"), "--events", str(tmp_path / "events.jsonl"),
         "--contacts", str(tmp_path / "contacts.csv"), "--json"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.feature("D-05")
def test_late_sms_waits_for_the_morning_unless_it_ignores_sms_hours(tmp_path: Path) -> None:
    lines = run_simulation(
        tmp_path,
        [
            {"type": "booking", "contact": {"external_id": "paris"},
             "occurred_at": "2026-10-24T22:30:00+02:00", "properties": {"booking_id": "B1"}},
            {"type": "booking", "contact": {"external_id": "toronto"},
             "occurred_at": "2026-11-01T07:15:00-05:00", "properties": {"booking_id": "B2"}},
        ],
    )  # fmt: skip
    timeline = [(e["contact"], e["message"], e["at"], e["status"], e["reason"]) for e in lines]
    assert timeline == [
        ("paris", "confirmation", "2026-10-24T22:30:00+02:00", "deferred",
         "outside SMS hours (09:00–22:00 Europe/Paris): deferred to 2026-10-25T09:00+01:00"),
        ("paris", "code", "2026-10-24T22:30:00+02:00", "sent", None),
        # the night the clocks go back: 09:00 local is now at UTC+1
        ("paris", "confirmation", "2026-10-25T09:00:00+01:00", "sent", None),
        ("toronto", "confirmation", "2026-11-01T07:15:00-05:00", "deferred",
         "outside SMS hours (09:00–22:00 America/Toronto): deferred to 2026-11-01T09:00-05:00"),
        ("toronto", "code", "2026-11-01T07:15:00-05:00", "sent", None),
        ("toronto", "confirmation", "2026-11-01T09:00:00-05:00", "sent", None),
    ]  # fmt: skip


ZONES = st.sampled_from([ZoneInfo("Europe/Paris"), ZoneInfo("America/Toronto")])
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
HOURS = st.tuples(st.integers(0, 22), st.integers(0, 59), st.integers(1, 23), st.integers(0, 59)).filter(
    lambda t: (t[0], t[1]) < (t[2], t[3])
)


@pytest.mark.feature("D-05")
@given(at=INSTANTS, zone=ZONES, hours=HOURS)
def test_next_opening_is_the_first_allowed_local_time(
    at: datetime, zone: ZoneInfo, hours: tuple[int, int, int, int]
) -> None:
    start, end = time(hours[0], hours[1]), time(hours[2], hours[3])
    opening = next_opening(at, zone, start, end)
    local_now = at.astimezone(zone).time()
    if start <= local_now < end:
        assert opening is None
        return
    assert opening is not None and opening > at
    local = opening.astimezone(zone)
    # at the window's start, or just after it when the start fell in a DST gap
    assert start <= local.time() < end or local.time() == time(hours[0] + 1, hours[1])
    assert opening - at <= timedelta(hours=25)  # never skips a whole day
    # nothing allowed in between: the minute before the opening is outside the window
    before = (opening - timedelta(minutes=1)).astimezone(zone).time()
    assert not (start <= before < end) or opening - at < timedelta(minutes=1)
