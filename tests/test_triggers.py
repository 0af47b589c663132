"""Journeys started by more than one event: a count in a calendar period, an attribute's change, an
entry segment, once per contact (S-03), as the club examples use them (M-04, M-06)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from relance.cli.scenarios import scenarios_app
from relance.scenarios.periods import calendar_period
from tests.conftest import EXAMPLES, api_client, running_stack

CLUB = EXAMPLES / "club" / "scenarios"


def visit(contact: str, at: str, n: int) -> dict[str, Any]:
    return {"id": f"{contact}-visit-{n}", "type": "visit", "occurred_at": at,
            "contact": {"external_id": contact, "phone": "+33611223344", "time_zone": "Europe/Paris"}}  # fmt: skip


def started(answer: httpx.Response, journey: str) -> list[tuple[str, str]]:
    assert answer.status_code in (200, 202), answer.text
    return [
        (j["workflow_id"].rsplit(":", 1)[1], j["status"])
        for j in answer.json()["journeys"]
        if j["journey"] == journey
    ]


@pytest.mark.feature("S-03")
@pytest.mark.feature("M-04")
async def test_the_tenth_visit_of_a_month_starts_the_milestone_once(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with (
        running_stack(time_env.client, database_url, scenarios_dir=CLUB) as stack,
        api_client(stack) as http,
    ):
        outcomes = []
        # Nine visits in November (Paris time), the tenth on the 30th at 23:30 UTC: already
        # 1 December in Paris, so it counts for December; the tenth November one comes later.
        for n in range(1, 10):
            outcomes += started(
                await http.post("/v1/events", json=visit("zoe", f"2026-11-{n:02d}T18:00:00+01:00", n)),
                "visits_milestone",
            )
        assert outcomes == []
        december = await http.post("/v1/events", json=visit("zoe", "2026-11-30T23:30:00+00:00", 10))
        assert started(december, "visits_milestone") == []  # 1 of December
        tenth = await http.post("/v1/events", json=visit("zoe", "2026-11-30T22:30:00+00:00", 11))
        assert started(tenth, "visits_milestone") == [("month%3A2026-11", "started")]
        eleventh = await http.post("/v1/events", json=visit("zoe", "2026-11-29T10:00:00+01:00", 12))
        assert started(eleventh, "visits_milestone") == [("month%3A2026-11", "duplicate")]  # once a month
        again = await http.post("/v1/events", json=visit("zoe", "2026-11-30T22:30:00+00:00", 11))  # a retry
        assert again.json()["duplicate"] is True
        for n in range(13, 22):
            last = await http.post("/v1/events", json=visit("zoe", f"2026-12-{n - 10:02d}T18:00:00+01:00", n))
        assert started(last, "visits_milestone") == [
            ("month%3A2026-12", "started")
        ]  # with the 1 December one


@pytest.mark.feature("S-03")
@pytest.mark.feature("M-06")
async def test_status_changes_start_journeys_and_entry_segment_and_once(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with (
        running_stack(time_env.client, sqlite_url, scenarios_dir=CLUB) as stack,
        api_client(stack) as http,
    ):
        at = (await time_env.get_current_time()).isoformat()

        async def contact(attributes: dict[str, str]) -> None:
            body = {"external_id": "max", "email": "max@example.com", "attributes": attributes}
            assert (await http.post("/v1/contacts", json=body)).status_code == 200

        async def runs() -> list[tuple[str, str]]:
            async with stack.sessions() as session:
                from sqlalchemy import select

                from relance.models.tables.journey import JourneyRun

                rows = await session.scalars(select(JourneyRun).order_by(JourneyRun.started_at))
                return [(r.journey, r.status) for r in rows]

        await contact({"status": "client", "club": "Lyon"})
        assert await runs() == []  # client from nothing: neither journey's change
        await contact({"status": "former_client"})
        assert await runs() == [("former_client", "running")]
        await contact({"status": "former_client"})  # the same value again: no change
        assert len(await runs()) == 1
        # Back as a client, through an event's contact: welcomed (Lyon is in the entry segment).
        event = {"type": "visit", "occurred_at": at,
                 "contact": {"external_id": "max", "attributes": {"status": "client"}}}  # fmt: skip
        assert (await http.post("/v1/events", json=event)).status_code == 202
        assert [j for j, _ in await runs()] == ["former_client", "welcome_back"]
        await contact({"status": "former_client"})
        await contact({"status": "client"})  # welcomed once, ever
        assert [j for j, _ in await runs()] == ["former_client", "welcome_back", "former_client"]

        # Another club's member is not in the entry segment: the change is seen, nobody enters.
        await http.post(
            "/v1/contacts",
            json={"external_id": "ida", "attributes": {"status": "former_client", "club": "Paris"}},
        )
        body = {
            "type": "visit",
            "occurred_at": at,
            "contact": {"external_id": "ida", "attributes": {"status": "client"}},
        }
        answer = await http.post("/v1/events", json=body)
        assert answer.status_code == 202
        assert [j for j, _ in await runs()].count("welcome_back") == 1  # Max's only: Ida's club is not in it


def test_calendar_periods_follow_the_contacts_wall_clock() -> None:
    paris = ZoneInfo("Europe/Paris")
    start, end, label = calendar_period(datetime(2026, 10, 25, 12, tzinfo=paris), "month")
    assert (label, start.isoformat(), end.isoformat()) == (
        "2026-10", "2026-09-30T22:00:00+00:00", "2026-10-31T23:00:00+00:00"  # the DST change in between
    )  # fmt: skip
    start, end, label = calendar_period(datetime(2026, 12, 31, 23, tzinfo=paris), "week")
    assert (label, end - start) == ("2026-W53", timedelta(days=7))
    assert calendar_period(datetime(2026, 3, 29, 12, tzinfo=paris), "day")[1] - calendar_period(
        datetime(2026, 3, 29, 12, tzinfo=paris), "day"
    )[0] == timedelta(hours=23)  # the spring-forward day is 23 hours long


@pytest.mark.feature("S-03")
@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("{event: visit, threshold: {count: 0}}", "count 0: a threshold counts at least 1 event"),
        ("{status: {attribute: status}, event: visit}", "give either 'event' (an event type) or 'status'"),
        ("{event: visit, threshold: {count: 3}, ref: club}", "'threshold' starts once per period already"),
        ("{event: visit, segment: nope_filter}", "segment:"),
    ],
)
def test_bad_triggers_are_explained(tmp_path: Path, trigger: str, message: str) -> None:
    (tmp_path / "s.yaml").write_text(
        f"scenario: s\njourneys:\n  - id: j\n    trigger: {trigger}\n"
        "    messages:\n      - id: m\n        template: club/welcome_back\n        purpose: transactional\n"
    )
    result = CliRunner().invoke(
        scenarios_app, ["validate", str(tmp_path), "--templates", str(EXAMPLES / "templates")]
    )
    assert result.exit_code == 1, result.output
    assert message in result.stdout, result.stdout


def booking(contact: str, booking_id: str, at: datetime, starts_at: object) -> dict[str, Any]:
    properties = {"booking_id": booking_id, "activity": "yoga"}
    if starts_at is not None:
        properties["starts_at"] = starts_at
    return {"type": "booking", "occurred_at": at.isoformat(), "properties": properties,
            "contact": {"external_id": contact, "email": f"{contact}@example.com", "phone": "+33611223344",
                        "time_zone": "Europe/Paris"}}  # fmt: skip


@pytest.mark.feature("S-03")
@pytest.mark.feature("M-05")
async def test_booking_reminders_the_evening_before_and_on_the_hour(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    from sqlalchemy import select

    from relance.models.tables.delivery import Delivery
    from relance.simulation.run import time_skipping

    paris = ZoneInfo("Europe/Paris")
    async with (
        running_stack(time_env.client, sqlite_url, scenarios_dir=CLUB) as stack,
        api_client(stack) as http,
    ):
        t0 = await time_env.get_current_time()
        session_day = t0.astimezone(paris).date() + timedelta(days=3)
        starts = datetime.combine(session_day, time(16, 30), tzinfo=paris)
        answer = await http.post("/v1/events", json=booking("eva", "B-1", t0, starts.isoformat()))
        assert answer.status_code == 202, answer.text
        # Booked for tonight: the evening-before reminder's time has passed already.
        late = await http.post(
            "/v1/events", json=booking("eva", "B-2", t0, (t0 + timedelta(hours=3)).isoformat())
        )
        handles = [
            stack.client.get_workflow_handle(j["workflow_id"])
            for j in (*answer.json()["journeys"], *late.json()["journeys"])
        ]
        async with time_skipping(stack.client):
            for handle in handles:
                await handle.result()
        async with stack.sessions() as session:
            rows = {
                (d.journey, d.message, d.idempotency_key.split(":")[4]): d
                for d in await session.scalars(select(Delivery))
            }

        # A date in a form nobody can read, or none: refused, nothing stored.
        bad = await http.post("/v1/events", json=booking("eva", "B-3", t0, "next tuesday"))
        missing = await http.post("/v1/events", json=booking("eva", "B-4", t0, None))
    first = {m: d for (j, m, ref), d in rows.items() if ref == "B-1"}
    assert first["day_before"].status == "sent"
    evening = datetime.combine(session_day - timedelta(days=1), time(18), tzinfo=paris)
    assert abs(first["day_before"].at - evening) < timedelta(seconds=1)  # the server's clock runs on a little
    assert first["hour_before"].status == "sent" and first["hour_before"].channel == "sms"
    assert abs(first["hour_before"].at - datetime.combine(session_day, time(15), tzinfo=paris)) < timedelta(
        seconds=1
    )
    second = {m: d for (j, m, ref), d in rows.items() if ref == "B-2"}
    assert second["day_before"].status == "skipped" and "before the trigger" in (
        second["day_before"].reason or ""
    )
    assert bad.status_code == 422 and bad.json()["details"] == [
        {"field": "properties.starts_at",
         "message": "'next tuesday' is not a date: send ISO 8601, e.g. 2026-11-25T16:30:00+01:00 or 2026-11-25"}
    ]  # fmt: skip
    assert missing.status_code == 422
    assert (
        missing.json()["details"][0]["message"]
        == "missing: journey 'booking_reminders' times messages from it"
    )


def test_due_times_follow_the_club_software() -> None:
    from relance.scenarios.due_dates import due_times
    from relance.scenarios.loader import load_scenarios

    journey = next(j for j in load_scenarios(CLUB).get("club").journeys if j.id == "booking_reminders")  # type: ignore[union-attr]
    paris = ZoneInfo("Europe/Paris")
    for starts, hour_before in (("16:30", "15:00"), ("16:50", "15:00"), ("17:00", "16:00")):
        due = due_times(journey, {"starts_at": f"2026-03-29T{starts}:00"}, paris)  # local: no offset given
        assert due["hour_before"].astimezone(paris).strftime("%H:%M") == hour_before
        # The evening before is 28 March at 18:00 (+01:00), though the session is after the change to +02:00.
        assert due["day_before"].isoformat() == "2026-03-28T17:00:00+00:00"
    assert (
        due_times(journey, {"starts_at": "2026-11-25"}, paris)["day_before"].isoformat()
        == "2026-11-24T17:00:00+00:00"
    )


@pytest.mark.feature("S-03")
@pytest.mark.feature("M-02")
async def test_a_pack_running_out_and_a_cancelled_booking(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    from relance.simulation.run import time_skipping

    paris = ZoneInfo("Europe/Paris")
    async with (
        running_stack(time_env.client, sqlite_url, scenarios_dir=CLUB) as stack,
        api_client(stack) as http,
    ):
        t0 = await time_env.get_current_time()

        async def used(pack: str, left: int) -> list[tuple[str, str]]:
            body = {"type": "pack_used", "occurred_at": t0.isoformat(), "contact": {"external_id": "eva"},
                    "properties": {"pack_id": pack, "units_left": left}}  # fmt: skip
            return started(await http.post("/v1/events", json=body), "pack_running_out")

        assert await used("P-1", 5) == [] and await used("P-1", 3) == []
        assert await used("P-1", 2) == [("P-1", "started")]
        assert await used("P-1", 1) == [("P-1", "duplicate")]  # once per pack
        assert await used("P-2", 0) == [("P-2", "started")]

        # Two bookings; the first is cancelled: only its reminders stop.
        day = t0.astimezone(paris).date() + timedelta(days=3)
        ids = []
        for booking_id, hour in (("B-1", 10), ("B-2", 17)):
            starts = datetime.combine(day, time(hour), tzinfo=paris).isoformat()
            answer = await http.post("/v1/events", json=booking("eva", booking_id, t0, starts))
            ids += [
                j["workflow_id"] for j in answer.json()["journeys"] if j["journey"] == "booking_reminders"
            ]
        cancel = {"type": "booking_cancelled", "occurred_at": t0.isoformat(), "contact": {"external_id": "eva"},
                  "properties": {"booking_id": "B-1"}}  # fmt: skip
        assert (await http.post("/v1/events", json=cancel)).json()["signalled"] == [ids[0]]
        async with time_skipping(stack.client):
            first, second = [await stack.client.get_workflow_handle(i).result() for i in ids]
    assert [o["status"] for o in first["steps_done"]] == ["skipped", "skipped"]
    assert [o["status"] for o in second["steps_done"]] == ["sent", "sent"]
