"""Commercial pressure: at most N marketing messages per contact per local day, by priority (D-06, S-02)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment

from relance.channels.memory import CaptureChannel
from relance.core.db import create_engine, session_factory
from relance.delivery.pressure import same_time_next_day
from relance.models.tables.delivery import Delivery
from relance.templates.engine import TemplateStore
from relance.worker import build_worker
from tests.conftest import purchase, running_stack

SCENARIO = """\
scenario: shop
journeys:
  - id: receipt
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: receipt
        template: shop/note
        purpose: transactional   # never capped, never counted
  - id: offer
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: offer
        template: shop/note
        delay: 1 day
        priority: very_important
  - id: thanks
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: thanks
        template: shop/note
        delay: 1 day
        priority: low            # deferred to the next day by default
  - id: survey
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: survey
        template: shop/note
        delay: 1 day
        priority: low
        on_pressure: drop        # worthless a day late
"""


def simulate(
    tmp_path: Path, env: dict[str, str] | None = None
) -> list[tuple[str, str, str, str, str | None]]:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "shop.yaml").write_text(SCENARIO)
    (tmp_path / "templates" / "shop").mkdir(parents=True)
    (tmp_path / "templates" / "shop" / "note.subject.j2").write_text("{{ message.id }}")
    (tmp_path / "templates" / "shop" / "note.txt.j2").write_text(
        "Hello. Unsubscribe: {{ links.unsubscribe }}"
    )
    (tmp_path / "events.jsonl").write_text(
        json.dumps(
            {"type": "purchase", "contact": {"external_id": "ana"},
             "occurred_at": "2026-03-27T18:00:00+01:00", "properties": {"order_id": "O-1"}}
        ) + "\n"
    )  # fmt: skip
    (tmp_path / "contacts.csv").write_text(
        "external_id,email,time_zone,consent_email_marketing\nana,ana@example.com,Europe/Paris,yes\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "relance.cli", "simulate", "--scenarios", str(tmp_path / "scenarios"),
         "--templates", str(tmp_path / "templates"), "--events", str(tmp_path / "events.jsonl"),
         "--contacts", str(tmp_path / "contacts.csv"), "--json"],
        capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [(e["message"], e["at"], e["status"], e["contact"], e["reason"]) for e in lines]


@pytest.mark.feature("D-06")
@pytest.mark.feature("S-02")
def test_one_marketing_message_a_day_the_most_important_first(tmp_path: Path) -> None:
    timeline = simulate(tmp_path)
    assert timeline == [
        ("receipt", "2026-03-27T18:00:00+01:00", "sent", "ana", None),
        ("offer", "2026-03-28T18:00:00+01:00", "sent", "ana", None),
        ("survey", "2026-03-28T18:00:00+01:00", "skipped", "ana",
         "commercial pressure: gave way to a higher-priority message on 2026-03-28: dropped"),
        ("thanks", "2026-03-28T18:00:00+01:00", "deferred", "ana",
         "commercial pressure: gave way to a higher-priority message on 2026-03-28: "
         "deferred to 2026-03-29T18:00+02:00"),
        # Clocks went forward that night: "the next day, same time" is 23 hours later.
        ("thanks", "2026-03-29T18:00:00+02:00", "sent", "ana", None),
    ]  # fmt: skip


@pytest.mark.feature("D-06")
def test_the_daily_cap_is_a_setting(tmp_path: Path) -> None:
    timeline = simulate(tmp_path, {"RELANCE_PRESSURE_MAX_PER_DAY": "2"})
    by_message = {(m, s) for m, _, s, _, _ in timeline}
    # Two slots: the very important offer, then the first of the two low ones by name (survey).
    assert by_message == {("receipt", "sent"), ("offer", "sent"), ("survey", "sent"), ("thanks", "deferred"),
                          ("thanks", "sent")}  # fmt: skip


TWO_JOURNEYS = """\
scenario: race
journeys:
  - id: first
    trigger: {event: purchase, ref: order_id}
    messages:
      - {id: hello, template: referral/post_purchase_invite, delay: 1 second}
  - id: second
    trigger: {event: purchase, ref: order_id}
    messages:
      - {id: hello, template: referral/post_purchase_invite, delay: 1 second}
"""


@pytest.mark.feature("D-06")
async def test_two_workers_same_contact_same_second_send_one_message(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    """No arbitration wait: only the per-contact lock stands between two concurrent sends."""
    (tmp_path / "race.yaml").write_text(TWO_JOURNEYS)
    run = uuid.uuid4().hex[:6]  # the dev server outlives this test: journey ids must not repeat
    contacts = [f"{run}-{n}" for n in range(8)]
    outbox = CaptureChannel()  # both workers send through it
    async with running_stack(
        dev_env.client, database_url, scenarios_dir=tmp_path, channel=outbox, pressure_arbitration_seconds=0
    ) as stack:
        # The second worker: a client, a runtime and connections of its own, like another process.
        engine = create_engine(database_url)
        client = await Client.connect(
            dev_env.client.service_client.config.target_host,
            data_converter=pydantic_data_converter,
            runtime=Runtime(telemetry=TelemetryConfig()),
        )
        second = build_worker(
            client,
            stack.settings,
            session_factory(engine),
            outbox,
            TemplateStore(stack.settings.templates_dir),
        )
        try:
            async with second:
                now = datetime.now(UTC)
                for contact in contacts:
                    await stack.relance.send_event(purchase(now, order="O-1", contact=contact))
                rows: list[Delivery] = []
                for _ in range(150):
                    async with stack.sessions() as session:
                        rows = list(await session.scalars(select(Delivery)))
                    settled = all(
                        r.status not in ("queued", "sending") for r in rows
                    )  # claimed, not yet sent
                    if len(rows) == 2 * len(contacts) and settled:
                        break
                    await asyncio.sleep(0.2)
        finally:
            await engine.dispose()
    outcome = {c: sorted(r.status for r in rows if r.contact_external_id == c) for c in contacts}
    assert outcome == {c: ["deferred", "sent"] for c in contacts}
    assert sorted(m.to for m in outbox.messages) == sorted(f"{c}@example.com" for c in contacts)


@pytest.mark.feature("D-06")
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.sampled_from([ZoneInfo("Europe/Paris"), ZoneInfo("America/Toronto")]),
)
def test_the_next_day_keeps_the_local_time(at: datetime, zone: ZoneInfo) -> None:
    later = same_time_next_day(at, zone)
    local, local_later = at.astimezone(zone), later.astimezone(zone)
    assert local_later.date() == local.date() + timedelta(days=1)
    # Same wall time, unless it does not exist that day (a DST gap moves it forward an hour).
    gap = datetime.combine(local_later.date(), local.time()).replace(tzinfo=zone)
    if gap.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == gap.replace(tzinfo=None):
        assert local_later.time() == local.time()
    assert timedelta(hours=22) <= later - at <= timedelta(hours=26)
