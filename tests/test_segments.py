"""Dynamic segments (C-06), the criteria catalog (C-07), default filters (C-04), lead scoring (C-09).

Every criterion runs on SQLite and on PostgreSQL against the same population, which is
written through the product's own paths (contact upsert, unsubscribe, list API functions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from relance.contacts.consent import unsubscribe
from relance.contacts.upsert import upsert_contact
from relance.core.db import create_engine, session_factory, sync_url
from relance.lists import service as lists
from relance.models.event import ContactIn
from relance.models.list import ListIn
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.models.tables.event import Event
from relance.models.tables.list import ListMember
from relance.segments import service as segment_service
from relance.segments.audience import audience
from relance.segments.duplicates import normalise_name
from relance.segments.load import SegmentError, load, parse
from tests.conftest import api_client, fresh_database, running_stack

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "segments"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "segments"


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


# -- the population --------------------------------------------------------------------------

PEOPLE: dict[str, dict[str, Any]] = {
    "ana": {
        "email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez", "last_purchase_at": ago(10),
        "attributes": {"club": "A", "status": "client", "civility": "mrs", "birth_date": "1990-06-15",
                       "subscriptions": ["annual"], "packs": ["ten"], "creation_channel": "online",
                       "badge": "B-1", "followed": True, "contact_method": "phone", "level": 5, "plan": "gold"},
    },
    "bob": {
        "email": "bob@example.com", "first_name": "Bob", "last_name": "Stone", "last_purchase_at": ago(100),
        "attributes": {"club": "B", "status": "prospect", "civility": "mr", "birth_date": "1990-06-16",
                       "subscriptions": ["annual", "option"], "packs": [], "creation_channel": "kiosk",
                       "badge": "", "contact_method": "chat", "level": "5"},
    },
    "cy": {
        "email": "cy@example.com", "first_name": "Cy", "last_name": "Young",
        "attributes": {"club": "C", "status": "client", "civility": "miss", "birth_date": "2000-02-29",
                       "packs": ["ten", "option"], "creation_channel": "import", "badge": 7, "followed": False,
                       "contact_method": "salon", "level": 12.5},
    },
    "dan": {"email": "dan@example.com", "attributes": {"club": 12, "status": None, "vip": True}},
    "eve": {"email": "eve@example.com",
            "attributes": {"subscriptions": "annual", "birth_date": "unknown", "status": ["client"]}},
    "fay": {"email": "Fay.Doe@example.com", "first_name": "Fay", "last_name": "Doe"},
    "fay2": {"email": "fay.doe@example.com", "first_name": "Faye", "last_name": "Dough"},
    "gus": {"email": "gus@example.com", "first_name": "Élodie", "last_name": "Martin-Roux"},
    "hal": {"email": "hal@example.com", "first_name": "elodie", "last_name": "martin  roux"},
}  # fmt: skip
EVERYONE = set(PEOPLE)

# (contact, type, when, properties)
EVENTS: list[tuple[str, str, datetime, dict[str, Any]]] = [
    *[("ana", "visit", ago(d), {}) for d in (1, 5, 14)],
    *[("bob", "visit", ago(d), {}) for d in (1, 2, 20)],
    ("cy", "visit", ago(15), {}),  # exactly on the window's edge: counted
    ("cy", "visit", ago(3), {}),
    ("cy", "visit", ago(4), {}),
    ("cy", "visit", NOW + timedelta(hours=1), {}),  # after the reference time: not counted
    ("ana", "booking", ago(2), {"activity": "yoga"}),
    ("ana", "booking", ago(10), {"activity": "yoga"}),
    ("bob", "booking", ago(3), {"activity": "pilates"}),
    ("cy", "booking", ago(40), {"activity": "yoga"}),
    ("cy", "booking", ago(5), {"activity": "pilates"}),
    ("cy", "booking", ago(6), {"activity": "boxing"}),
    ("ana", "payment_rejected", ago(20), {"group": "insufficient_funds"}),
    ("ana", "payment_rejected", ago(10), {"group": "insufficient_funds"}),
    ("bob", "payment_rejected", ago(30), {"group": "insufficient_funds"}),
    ("bob", "payment_accepted", ago(20), {"group": "insufficient_funds"}),
    ("bob", "payment_rejected", ago(10), {"group": "insufficient_funds"}),
    ("bob", "payment_rejected", ago(5), {"group": "non_iso"}),
    ("cy", "payment_accepted", ago(3), {"group": "insufficient_funds"}),
    ("dan", "payment_accepted", ago(40), {"group": "insufficient_funds"}),
    *[("dan", "payment_rejected", ago(d), {"group": "insufficient_funds"}) for d in (30, 20, 10)],
    ("eve", "payment_rejected", ago(10), {"group": "non_iso"}),
    ("eve", "payment_rejected", ago(9), {"group": "non_iso"}),
    ("eve", "payment_rejected", ago(8), {"group": "technical"}),
    ("hal", "payment_rejected", ago(7), {"group": "insufficient_funds"}),
    ("hal", "payment_accepted", ago(7), {"group": "insufficient_funds"}),  # same instant: accepted wins
    # lead scoring (form 10, click 3, page_visit 1)
    ("ana", "form", ago(1), {}),
    *[("bob", "page_visit", ago(d), {}) for d in (1, 2, 3)],
    ("cy", "click", ago(1), {}),
    ("dan", "form", ago(3), {}),
    ("dan", "form", ago(2), {}),
]


@dataclass
class Population:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    ids: dict[int, str]

    async def members(self, spec: Any, now: datetime = NOW) -> set[str]:
        segment = spec if not isinstance(spec, dict | list) else parse(spec, "test")
        async with self.sessions() as session:
            found = (await session.scalars(audience(segment, now))).all()
        return {self.ids[i] for i in found}


async def _populate(sessions: async_sessionmaker[AsyncSession]) -> dict[int, str]:
    ids: dict[str, int] = {}
    async with sessions() as session, session.begin():
        for external_id, fields in PEOPLE.items():
            contact, _ = await upsert_contact(session, ContactIn(external_id=external_id, **fields))
            ids[external_id] = contact.id
        dan = await session.get(Contact, ids["dan"])
        assert dan is not None
        await unsubscribe(session, dan, ago(1), source="link")
        dan.email_status = "soft_bounced"  # as a soft bounce notification leaves it
        eve = await session.get(Contact, ids["eve"])
        assert eve is not None
        eve.email_status = "hard_bounced"
        session.add_all(
            Event(type=t, contact_id=ids[who], occurred_at=at, properties=props)
            for who, t, at, props in EVENTS
        )
        # a click on a message relance sent to Bob (3 points) and an open for Fay (none)
        for key, who, kind in (("d-bob", "bob", "click"), ("d-fay", "fay", "open")):
            session.add(
                Delivery(idempotency_key=key, workflow_id=f"w-{who}", scenario="s", journey="j", message="m",
                         channel="email", contact_id=ids[who], contact_external_id=who, status="sent", at=ago(1))
            )  # fmt: skip
            session.add(DeliveryEvent(delivery_key=key, kind=kind, at=ago(1)))
        await lists.create(session, ListIn(name="Lyon", contacts=["ana", "bob"]))
        old = await lists.create(session, ListIn(name="Old", contacts=["cy"]))
        lists.archive(old)
    return {v: k for k, v in ids.items()}


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=BACKENDS)
async def people(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Population]:
    """One database of each kind holding PEOPLE and EVENTS, shared by the read-only tests."""
    databases = fresh_database(request.param, tmp_path_factory.mktemp("segments"))
    url = next(databases)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        yield Population(url, engine, sessions, await _populate(sessions))
    finally:
        await engine.dispose()
        databases.close()


# -- the catalog (C-07) ----------------------------------------------------------------------

CATALOG: list[tuple[str, Any, set[str]]] = [
    ("club", {"club": ["A", "B"]}, {"ana", "bob"}),
    ("club: numbers are not text", {"club": "12"}, set()),
    ("status", {"status": "client"}, {"ana", "cy"}),
    ("civility", {"civility": ["mrs", "miss"]}, {"ana", "cy"}),
    ("age: birthday today counts", {"age": {"min": 35}}, {"ana"}),
    ("age: max", {"age": {"max": 34}}, {"bob", "cy"}),
    ("age: range", {"age": {"min": 25, "max": 34}}, {"bob", "cy"}),
    ("subscriptions or packs", {"subscriptions_or_packs": ["option"]}, {"bob", "cy"}),
    ("subscriptions or packs: arrays only", {"subscriptions_or_packs": ["ten", "annual"]}, {"ana", "bob", "cy"}),
    ("subscriptions and packs", {"subscriptions_and_packs": ["annual", "ten"]}, {"ana"}),
    ("subscriptions and packs: both subscriptions", {"subscriptions_and_packs": ["option", "annual"]}, {"bob"}),
    ("creation channel", {"creation_channel": ["online", "import"]}, {"ana", "cy"}),
    ("visits >= 3 in 15 days", {"visits": {"min": 3, "days": 15}}, {"ana", "cy"}),
    ("visits: none in 15 days", {"visits": {"max": 0, "days": 15}}, EVERYONE - {"ana", "bob", "cy"}),
    ("visits: between", {"visits": {"min": 1, "max": 2, "days": 15}}, {"bob"}),
    ("bookings in a period", {"bookings": {"min": 2, "days": 30}}, {"ana", "cy"}),
    ("bookings of activities", {"bookings": {"min": 1, "days": 30, "activities": ["yoga"]}}, {"ana"}),
    ("bookings: none", {"bookings": {"max": 0, "days": 30}}, EVERYONE - {"ana", "bob", "cy"}),
    ("bookings between dates", {"bookings": {"min": 1, "from": "2025-05-01", "to": "2025-05-06"}}, {"cy"}),
    ("rejection group", {"rejection_group": "non_iso"}, {"bob", "eve"}),
    ("rejection group: several", {"rejection_group": ["insufficient_funds", "technical"]}, {"ana", "bob", "dan", "eve", "hal"}),
    ("consecutive rejections", {"consecutive_rejections": {"group": "insufficient_funds", "min": 2}}, {"ana", "dan"}),
    ("consecutive rejections: 3", {"consecutive_rejections": {"group": "insufficient_funds", "min": 3}}, {"dan"}),
    ("consecutive rejections: since the last acceptance", {"consecutive_rejections": {"group": "insufficient_funds", "min": 1}}, {"ana", "bob", "dan"}),
    ("consecutive rejections: per group", {"consecutive_rejections": {"group": ["non_iso", "technical"], "min": 2}}, {"eve"}),
    ("purchase in the last days", {"purchase": {"days": 30}}, {"ana"}),
    ("purchase between dates", {"purchase": {"from": "2025-03-01", "to": "2025-03-07"}}, {"bob"}),
    ("badge: has one", {"badge": True}, {"ana", "cy"}),
    ("badge: has none", {"badge": False}, EVERYONE - {"ana", "cy"}),
    ("badge: one of", {"badge": ["B-1", "B-2"]}, {"ana"}),
    ("custom attribute: equals text", {"attributes": {"plan": "gold"}}, {"ana"}),
    ("custom attribute: equals a number", {"attributes": {"level": 5}}, {"ana"}),
    ("custom attribute: text is not a number", {"attributes": {"level": "5"}}, {"bob"}),
    ("custom attribute: one of", {"attributes": {"level": [5, "5"]}}, {"ana", "bob"}),
    ("custom attribute: boolean", {"attributes": {"vip": True}}, {"dan"}),
    ("custom attribute: exists", {"attributes": {"plan": {"exists": True}}}, {"ana"}),
    ("custom attribute: absent or null", {"attributes": {"status": {"exists": False}}}, {"dan", "fay", "fay2", "gus", "hal"}),
    ("custom attribute: comparison", {"attributes": {"level": {"gt": 5}}}, {"cy"}),
    ("custom attribute: range", {"attributes": {"level": {"gte": 5, "lt": 13}}}, {"ana", "cy"}),
    ("list: active list", {"list": "Lyon"}, {"ana", "bob"}),
    ("email status", {"email_status": ["soft_bounced", "hard_bounced"]}, {"dan", "eve"}),
]  # fmt: skip


@pytest.mark.feature("C-07")
@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in CATALOG], ids=[c[0] for c in CATALOG])
async def test_each_criterion_of_the_catalog(
    people: Population, spec: dict[str, Any], expected: set[str]
) -> None:
    assert await people.members(spec) == expected


@pytest.mark.feature("C-07")
async def test_age_of_someone_born_on_29_february(people: Population) -> None:
    # whole years, birthday rule: 25 on 1 March 2025, still 24 on 28 February
    spec = {"age": {"min": 25, "max": 25}}
    assert await people.members(spec, datetime(2025, 2, 28, 23, tzinfo=UTC)) == set()
    assert await people.members(spec, datetime(2025, 3, 1, tzinfo=UTC)) == {"cy"}
    assert await people.members(spec, datetime(2024, 2, 29, tzinfo=UTC)) == set()  # 24 that day


# -- AND / OR (C-06) -------------------------------------------------------------------------


@pytest.mark.feature("C-06")
async def test_and_across_criteria_or_within_one(people: Population) -> None:
    # 002 §1.3: club A OR C, AND status client, AND 3 visits in 15 days
    assert await people.members({"club": ["A", "C"]}) == {"ana", "cy"}
    assert await people.members({"club": ["A", "C"], "status": "client"}) == {"ana", "cy"}
    assert await people.members({"club": ["A", "B", "C"], "status": ["client", "prospect"]}) == {
        "ana",
        "bob",
        "cy",
    }
    spec = {"club": ["A", "B", "C"], "status": "client", "visits": {"min": 3, "days": 15}, "age": {"max": 30}}
    assert await people.members(spec) == {"cy"}
    # the list form: every item must hold, so the same criterion can be written twice
    two_attributes = [{"attributes": {"level": {"gte": 5}}}, {"attributes": {"level": {"lte": 6}}}]
    assert await people.members(two_attributes) == {"ana"}
    assert await people.members([]) == EVERYONE
    assert await people.members({}) == EVERYONE


# -- default filters (C-04) ------------------------------------------------------------------

DEFAULTS = [
    ("all", EVERYONE),
    ("possible_duplicates", {"fay", "fay2", "gus", "hal"}),
    ("unsubscribed", {"dan"}),
    ("soft_bounced", {"dan"}),
    ("hard_bounced", {"eve"}),
    ("bounced", {"dan", "eve"}),
    ("followed", {"ana"}),
    ("best_leads", {"ana", "bob", "cy", "dan"}),
    ("best_leads:2", {"dan", "ana"}),
    ("contact_method:phone", {"ana"}),
    ("contact_method:chat", {"bob"}),
    ("contact_method:form", set()),
    ("contact_method:salon", {"cy"}),
]


@pytest.mark.feature("C-04")
@pytest.mark.parametrize(("name", "expected"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
async def test_default_filters(people: Population, name: str, expected: set[str]) -> None:
    assert await people.members(name) == expected


def test_duplicate_names_are_compared_without_accents_case_or_spaces() -> None:
    assert (
        normalise_name("Élodie", "Martin-Roux")
        == normalise_name("elodie", "martin  roux")
        == "elodiemartinroux"
    )
    assert normalise_name("Zoë", "D'Œuvre") == "zoedoeuvre"
    assert normalise_name("Ana", None) is None


# -- lead scoring (C-09) ---------------------------------------------------------------------


@pytest.mark.feature("C-09")
async def test_scores_rank_the_best_leads(people: Population) -> None:
    # dan 2 forms = 20, ana 1 form = 10, bob 3 page visits + 1 clicked message = 6, cy 1 click = 3
    async with people.sessions() as session:
        shown = await segment_service.show(session, parse({"best_leads": 10}, "test"), NOW, limit=10)
    assert [(s.external_id, s.score) for s in shown] == [("dan", 20), ("ana", 10), ("bob", 6), ("cy", 3)]
    assert await people.members({"score": {"min": 5}}) == {"dan", "ana", "bob"}
    assert await people.members({"score": {"max": 3}}) == EVERYONE - {
        "dan",
        "ana",
        "bob",
    }  # no interaction: 0
    # points are configurable: a page visit worth 50 puts Bob first
    assert await people.members({"best_leads": {"top": 1, "points": {"page_visit": 50}}}) == {"bob"}
    # clicks only: Cy clicked on the site, Bob in a message: a tie goes to the older contact
    assert await people.members({"best_leads": {"top": 1, "points": {"click": 30}}}) == {"bob"}


# -- snapshot into a list (C-06, C-05) -------------------------------------------------------


@pytest.mark.feature("C-06")
@pytest.mark.feature("C-05")
async def test_snapshot_freezes_a_segment_into_a_list(people: Population) -> None:
    name = f"Visitors {uuid.uuid4().hex[:6]}"
    segment = parse({"visits": {"min": 3, "days": 15}}, "test")
    async with people.sessions() as session, session.begin():
        row = await segment_service.snapshot(session, segment, NOW, name)
        default = await segment_service.snapshot(session, parse({"club": "A"}, "t"), NOW, None)
    async with people.sessions() as session:
        members = set(
            (await session.scalars(select(ListMember.contact_id).where(ListMember.list_id == row.id))).all()
        )
    assert {people.ids[i] for i in members} == {"ana", "cy"}
    assert default.name.startswith("L") and default.name[1:].isdigit()
    # the list is static: it is a criterion like any other, and it no longer follows the visits
    assert await people.members({"list": name}, NOW + timedelta(days=30)) == {"ana", "cy"}
    assert await people.members({"visits": {"min": 3, "days": 15}}, NOW + timedelta(days=30)) == set()


# -- bad input -------------------------------------------------------------------------------


def _problems(data: Any) -> list[str]:
    with pytest.raises(SegmentError) as caught:
        parse(data, "api")
    return [f"{p.field}: {p.message}" for p in caught.value.problems]


@pytest.mark.feature("C-07")
def test_unknown_fields_and_wrong_types_are_explained() -> None:
    [unknown] = _problems({"vists": {"min": 3, "days": 15}})
    assert unknown.startswith(
        "vists: unknown field 'vists': did you mean 'visits'? the known criteria are club, "
    )
    [inner] = _problems({"visits": {"min": 3, "dayz": 15}})
    assert inner.startswith("visits.dayz: unknown field 'dayz': did you mean 'days'?")
    assert _problems({"visits": {"min": "three", "days": 15}}) == [
        "visits.min: write a whole number (got 'three'), e.g. min: 3"
    ]
    assert _problems({"visits": {"days": 15}}) == ["visits: give 'min' and/or 'max', e.g. {min: 3, days: 15}"]
    assert _problems({"creation_channel": "web"})[0].startswith(
        "creation_channel[0]: write 'club', 'api', 'online', 'kiosk', 'import' (got 'web')"
    )
    assert _problems({"age": {"min": 50, "max": 25}}) == ["age: 'min' (50) is above 'max' (25)"]
    assert _problems({"purchase": {"days": 3, "from": "2025-01-01"}}) == [
        "purchase: give either 'days' or 'from'/'to', not both"
    ]
    assert _problems({"purchase": {"from": "1st of May"}}) == [
        "purchase.from: write a date as YYYY-MM-DD (got '1st of May')"
    ]
    assert _problems([{"club": "A"}, {"statuss": "client"}])[0].startswith(
        "[1].statuss: unknown field 'statuss': did you mean 'status'?"
    )
    assert _problems({"attributes": {"my-attr": 1}}) == [
        "attributes: attribute name 'my-attr': use letters, digits and '_', starting with a letter"
    ]
    assert _problems({"attributes": {"level": {"bigger": 3}}})[0].startswith(
        "attributes.level.bigger: unknown field 'bigger'"
    )
    assert _problems("status: client") == [
        "segment: expected criteria as 'key: value' pairs (e.g. status: client), not 'status: client'"
    ]  # fmt: skip


def test_segment_files_report_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("club: [A, B]\nstatus: client\nvisits:\n  min: 3\n  dais: 15\n")
    with pytest.raises(SegmentError) as caught:
        load(path)
    assert str(caught.value) == (
        f"{path}:5: visits.dais: unknown field 'dais': did you mean 'days'? "
        "the known fields are days, from, to, min, max"
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{\n\t"club": ["A",\n}\n')
    with pytest.raises(SegmentError) as caught:
        load(broken)
    assert caught.value.problems[0].line == 3 and caught.value.problems[0].field == "json"
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(SegmentError, match="the file is empty: write criteria"):
        load(empty)
    for example in sorted(EXAMPLES.glob("*.*")):  # the shipped examples are valid
        assert load(example).criteria, example


@pytest.mark.feature("C-06")
async def test_a_segment_naming_an_unknown_or_archived_list_is_refused(people: Population) -> None:
    async with people.sessions() as session:
        with pytest.raises(SegmentError, match=r"no list named 'Lyn': did you mean 'Lyon'\?"):
            await segment_service.count(session, parse({"list": "Lyn"}, "t"), NOW)
        with pytest.raises(SegmentError, match="list 'Old' is archived: reactivate it"):
            await segment_service.count(session, parse({"list": ["Lyon", "Old"]}, "t"), NOW)


# -- command line and HTTP -------------------------------------------------------------------


def _cli(url: str, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run the commands side by side: most of each one's time is starting Python."""
    env = {**os.environ, "RELANCE_DATABASE_URL": url}
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "relance.cli", "segments", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for args in commands
    ]  # fmt: skip
    done = []
    for process, args in zip(running, commands, strict=True):
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return done


@pytest.mark.feature("C-06")
@pytest.mark.feature("C-04")
@pytest.mark.parametrize("people", ["sqlite"], indirect=True)  # starting the CLI costs seconds
def test_command_line_counts_shows_and_snapshots(people: Population) -> None:
    at = ["--at", NOW.isoformat()]
    name = f"cli-{uuid.uuid4().hex[:6]}"
    counted, shown, frozen, bad = _cli(
        people.url,
        ["count", str(DATA / "visitors.yaml"), *at],
        ["show", "best_leads", "--limit", "2", "--json"],
        ["snapshot", str(DATA / "visitors.yaml"), "--list", name, *at],
        ["count", str(DATA / "typo.yaml")],
    )
    assert (counted.returncode, counted.stdout.strip()) == (0, "2"), counted.stderr
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {
        "count": 4,
        "contacts": [{"external_id": "dan", "email": "dan@example.com", "score": 20},
                     {"external_id": "ana", "email": "ana@example.com", "score": 10}],
    }  # fmt: skip
    assert frozen.returncode == 0, frozen.stderr
    assert json.loads(frozen.stdout) == {"name": name, "members": 2, "archived": False, "salesperson": None}
    assert bad.returncode == 2
    assert f"{DATA / 'typo.yaml'}:3: stauts: unknown field 'stauts': did you mean 'status'?" in bad.stderr


@pytest.mark.feature("C-06")
@pytest.mark.feature("C-04")
async def test_http_api_counts_shows_and_snapshots(time_env: WorkflowEnvironment, people: Population) -> None:
    at = NOW.isoformat()
    async with running_stack(time_env.client, people.url) as stack, api_client(stack) as http:
        counted = await http.post("/v1/segments/count", json={"segment": {"club": ["A", "B"]}, "at": at})
        assert counted.status_code == 200, counted.text
        assert counted.json() == {"count": 2}
        shown = await http.post("/v1/segments/show", json={"segment": [{"status": "client"}], "limit": 5})
        assert shown.json() == {
            "count": 2,
            "contacts": [{"external_id": "ana", "email": "ana@example.com", "score": None},
                         {"external_id": "cy", "email": "cy@example.com", "score": None}],
        }  # fmt: skip
        name = f"api-{uuid.uuid4().hex[:6]}"
        frozen = await http.post(
            "/v1/segments/snapshot",
            json={"segment": {"visits": {"min": 3, "days": 15}}, "at": at, "list": name},
        )
        assert frozen.status_code == 201, frozen.text
        assert frozen.json()["members"] == 2
        builtin = await http.get("/v1/segments/builtin/unsubscribed/count")
        assert builtin.json() == {"count": 1}
        missing = await http.get("/v1/segments/builtin/unsubscribd/count")
        assert missing.status_code == 404
        assert missing.json()["details"][0]["field"] == "name"
        assert "did you mean 'unsubscribed'?" in missing.json()["details"][0]["message"]

        typo = await http.post(
            "/v1/segments/count", json={"segment": {"club": "A", "visits": {"min": 3, "dys": 15}}}
        )
        assert typo.status_code == 422
        assert typo.json()["details"] == [
            {"field": "segment.visits.dys",
             "message": "unknown field 'dys': did you mean 'days'? the known fields are days, from, to, min, max"}
        ]  # fmt: skip
        assert typo.json()["error"].startswith("the segment cannot be used: unknown field 'dys'")
        wrong = await http.post(
            "/v1/segments/count", json={"segment": {"age": {"min": "old"}, "followed": "maybe"}}
        )
        assert wrong.status_code == 422
        assert [d["field"] for d in wrong.json()["details"]] == ["segment.age.min", "segment.followed"]
        no_list = await http.post("/v1/segments/count", json={"segment": {"list": "Lyom"}})
        assert no_list.status_code == 422
        assert no_list.json()["details"] == [
            {"field": "segment.list", "message": "no list named 'Lyom': did you mean 'Lyon'?"}
        ]
        body = await http.post("/v1/segments/count", json={"segmnt": {}})
        assert body.status_code == 422 and body.json()["details"][0]["field"] in {"segmnt", "segment"}


# -- random segments: SQLite = PostgreSQL = a plain Python reading of the criteria -------------

WHEN = st.sampled_from([0, 1, 2, 5, 14, 15, 16, 30, 31, 40, -1]).map(lambda d: ago(d))  # 15 days: the edge
ATTRIBUTES = st.fixed_dictionaries(
    {},
    optional={
        "club": st.sampled_from(["A", "B", 12]),
        "status": st.sampled_from(["client", "prospect", None]),
        "birth_date": st.sampled_from(["1990-06-15", "1990-06-16", "2000-02-29", "1999-12-31", "bad"]),
        "subscriptions": st.one_of(
            st.lists(st.sampled_from(["annual", "option"]), unique=True), st.just("annual")
        ),
        "packs": st.lists(st.sampled_from(["ten", "option"]), unique=True),
        "level": st.sampled_from([5, "5", 12.5, True]),
        "followed": st.sampled_from([True, False, "true"]),
    },
)
PERSON = st.fixed_dictionaries(
    {
        "email": st.sampled_from(["a@example.com", "A@example.com", "b@example.com", None]),
        "first_name": st.sampled_from(["Élodie", "elodie", "Ana", None]),
        "last_name": st.sampled_from(["Martin", "MARTIN", None]),
        "email_status": st.sampled_from(["ok", "soft_bounced", "hard_bounced"]),
        "last_purchase_at": st.one_of(st.none(), WHEN),
        "attributes": ATTRIBUTES,
    }
)
EVENT = st.tuples(
    st.integers(0, 7),
    st.sampled_from(
        ["visit", "booking", "payment_rejected", "payment_accepted", "form", "page_visit", "click"]
    ),
    WHEN,
    st.fixed_dictionaries(
        {},
        optional={"activity": st.sampled_from(["yoga", "pilates"]), "group": st.sampled_from(["g1", "g2"])},
    ),
)
COUNT = st.builds(
    lambda low, span, days: {"min": low, **({"max": low + span} if span is not None else {}), "days": days},
    st.integers(0, 3), st.one_of(st.none(), st.integers(0, 2)), st.sampled_from([1, 15, 30]),
)  # fmt: skip
CRITERION = st.one_of(
    st.builds(lambda v: {"club": v}, st.lists(st.sampled_from(["A", "B", "12"]), min_size=1, unique=True)),
    st.builds(lambda v: {"status": v}, st.sampled_from(["client", "prospect"])),
    st.builds(lambda a, b: {"age": {"min": min(a, b), "max": max(a, b)}}, st.integers(20, 40), st.integers(20, 40)),
    st.builds(lambda v: {"subscriptions_or_packs": v}, st.lists(st.sampled_from(["annual", "option", "ten"]), min_size=1)),
    st.builds(lambda v: {"subscriptions_and_packs": v}, st.lists(st.sampled_from(["annual", "option", "ten"]), min_size=1)),
    st.builds(lambda c: {"visits": c}, COUNT),
    st.builds(lambda c, a: {"bookings": {**c, **({"activities": a} if a else {})}}, COUNT, st.sampled_from([None, ["yoga"]])),
    st.builds(lambda v: {"rejection_group": v}, st.sampled_from([["g1"], ["g1", "g2"]])),
    st.builds(lambda g, n: {"consecutive_rejections": {"group": g, "min": n}}, st.sampled_from(["g1", ["g1", "g2"]]), st.integers(1, 3)),
    st.builds(lambda d: {"purchase": {"days": d}}, st.sampled_from([1, 15, 30])),
    st.builds(lambda v: {"attributes": {"level": v}}, st.sampled_from([5, "5", {"gte": 5}, {"exists": True}, {"exists": False}, True])),
    st.builds(lambda v: {"followed": v}, st.booleans()),
    st.builds(lambda v: {"possible_duplicates": v}, st.booleans()),
    st.builds(lambda v: {"email_status": v}, st.sampled_from(["ok", ["soft_bounced", "hard_bounced"]])),
    st.builds(lambda v: {"score": {"min": v}}, st.sampled_from([0, 1, 10])),
    st.builds(lambda v: {"best_leads": v}, st.integers(1, 4)),
)  # fmt: skip
POINTS = {"form": 10, "click": 3, "page_visit": 1}


@dataclass
class Row:
    id: int
    person: dict[str, Any]
    events: list[tuple[str, datetime, dict[str, Any]]]


def _window(days: int) -> tuple[datetime, datetime]:
    return NOW - timedelta(days=days), NOW + timedelta(microseconds=1)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _holds(row: Row, everyone: list[Row], name: str, rule: Any) -> bool:
    attrs = row.person["attributes"]
    text = {k: v for k, v in attrs.items() if isinstance(v, str)}
    end = NOW + timedelta(microseconds=1)

    def count(kind: str, spec: dict[str, Any], keep: Any = lambda p: True) -> bool:
        start, stop = _window(spec["days"])
        n = sum(1 for t, at, p in row.events if t == kind and start <= at < stop and keep(p))
        return n >= spec["min"] and n <= spec.get("max", n)

    def owns(product: str) -> bool:
        return any(isinstance(attrs.get(k), list) and product in attrs[k] for k in ("subscriptions", "packs"))

    if name in {"club", "status"}:
        return text.get(name) in ([rule] if isinstance(rule, str) else rule)
    if name == "age":
        birth = text.get("birth_date", "")[:10]
        if len(birth) != 10 or birth[4] != "-" or birth[7] != "-":
            return False
        day = f"{NOW.month:02d}-{NOW.day:02d}"
        return f"{NOW.year - rule['max'] - 1:04d}-{day}" < birth <= f"{NOW.year - rule['min']:04d}-{day}"
    if name == "subscriptions_or_packs":
        return any(owns(p) for p in rule)
    if name == "subscriptions_and_packs":
        return all(owns(p) for p in rule)
    if name == "visits":
        return count("visit", rule)
    if name == "bookings":
        wanted = rule.get("activities")
        return count("booking", rule, lambda p: wanted is None or p.get("activity") in wanted)
    if name == "rejection_group":
        return any(t == "payment_rejected" and at < end and p.get("group") in rule for t, at, p in row.events)
    if name == "consecutive_rejections":
        for group in [rule["group"]] if isinstance(rule["group"], str) else rule["group"]:
            mine = [(t, at) for t, at, p in row.events if p.get("group") == group and at < end]
            accepted = [at for t, at in mine if t == "payment_accepted"]
            last = max(accepted) if accepted else None
            streak = [at for t, at in mine if t == "payment_rejected" and (last is None or at > last)]
            if len(streak) >= rule["min"]:
                return True
        return False
    if name == "purchase":
        start, stop = _window(rule["days"])
        bought = row.person["last_purchase_at"]
        return bought is not None and start <= bought < stop
    if name == "attributes":
        value, wanted = attrs.get("level", "missing"), rule["level"]
        if isinstance(wanted, dict) and "gte" in wanted:
            return (_number(value) or float("-inf")) >= wanted["gte"]
        if isinstance(wanted, dict):
            return (value not in ("missing", None)) == wanted["exists"]
        if isinstance(wanted, bool):
            return value is wanted
        if isinstance(wanted, str):
            return isinstance(value, str) and value == wanted
        return _number(value) == wanted
    if name == "followed":
        return (attrs.get("followed") is True) == rule
    if name == "possible_duplicates":

        def email(r: Row) -> str | None:
            return r.person["email"].lower() if r.person["email"] else None

        def full(r: Row) -> str | None:
            return normalise_name(r.person["first_name"], r.person["last_name"]) or None

        twin = any(
            other.id != row.id
            and ((email(row) and email(row) == email(other)) or (full(row) and full(row) == full(other)))
            for other in everyone
        )
        return twin == rule
    if name == "email_status":
        return row.person["email_status"] in ([rule] if isinstance(rule, str) else rule)
    if name == "score":
        return _score(row) >= rule["min"]
    if name == "best_leads":
        ranked = sorted((r for r in everyone if _score(r) > 0), key=lambda r: (-_score(r), r.id))
        return row.id in {r.id for r in ranked[:rule]}
    raise AssertionError(name)


def _score(row: Row) -> int:
    return sum(POINTS.get(t, 0) for t, _, _ in row.events)


def _expected(rows: list[Row], segment: list[dict[str, Any]]) -> set[int]:
    return {r.id for r in rows if all(_holds(r, rows, n, v) for c in segment for n, v in c.items())}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Engine]]:
    """Empty databases of each kind, with sync engines (hypothesis tests are plain functions)."""
    lite = fresh_database("sqlite", tmp_path_factory.mktemp("random"))
    pg = fresh_database("postgresql", tmp_path_factory.mktemp("random"))
    engines = [create_sync_engine(sync_url(next(lite))), create_sync_engine(sync_url(next(pg)))]
    yield engines
    for engine in engines:
        engine.dispose()
    lite.close()
    pg.close()


def _store(engine: Engine, rows: list[Row]) -> None:
    with engine.begin() as db:
        for table in (Event, Contact):
            db.execute(delete(table))
        db.execute(
            insert(Contact),
            [
                {"id": r.id, "external_id": f"c{r.id}", "created_at": NOW, "updated_at": NOW, **r.person}
                for r in rows
            ],
        )
        events = [
            {"contact_id": r.id, "type": t, "occurred_at": at, "properties": p}
            for r in rows
            for t, at, p in r.events
        ]
        if events:
            db.execute(insert(Event), events)


@pytest.mark.feature("C-06")
@pytest.mark.feature("C-07")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    people=st.lists(PERSON, min_size=1, max_size=8),
    events=st.lists(EVENT, max_size=25),
    segment=st.lists(CRITERION, min_size=1, max_size=2),
)
def test_random_segments_agree_on_both_databases_and_with_python(
    both: list[Engine], people: list[dict[str, Any]], events: list[Any], segment: list[dict[str, Any]]
) -> None:
    rows = [Row(i + 1, person, []) for i, person in enumerate(people)]
    for who, kind, at, props in events:
        rows[who % len(rows)].events.append((kind, at, props))
    query = audience(parse(segment, "random"), NOW)
    found = []
    for engine in both:
        _store(engine, rows)
        with engine.connect() as db:
            found.append(set(db.scalars(query).all()))
    assert found[0] == found[1], f"SQLite and PostgreSQL differ on {segment}"
    assert found[0] == _expected(rows, segment), segment
