"""CSV contact import (C-01 file import, C-02 default scenario, C-03 checks and report), CLI and API."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from temporalio.testing import WorkflowEnvironment

from relance.core.db import create_engine, session_factory
from relance.imports.errors import ImportFileError
from relance.imports.options import ImportOptions
from relance.imports.rows import ContactRow
from relance.imports.run import preview_rows
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.event import Event
from relance.models.tables.journey import JourneyRun
from relance.models.tables.list import ContactList, ListMember
from relance.simulation.run import time_skipping
from relance.workflows.journey import JourneyWorkflow
from tests.conftest import ROOT, api_client, free_port, running_stack

DATA = ROOT / "tests" / "data" / "import"
SAMPLES = ["comma_bom_crlf.csv", "semicolon_latin1.csv", "tab.tsv", "pipe.csv"]
CSV = {"Content-Type": "text/csv"}


def _command(url: str, args: Sequence[str | Path], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    environ = {**os.environ, "RELANCE_DATABASE_URL": url, "RELANCE_DATA_DIR": str(cwd / ".relance"), **env}
    return {
        "args": [sys.executable, "-m", "relance.cli", "contacts", "import", *map(str, args)],
        "env": environ,
        "cwd": cwd,
        "text": True,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
    }


def cli(url: str, *args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``relance contacts import`` as a person runs it (a subprocess, its own settings)."""
    return subprocess.run(**_command(url, args, cwd, env), timeout=120)


def cli_together(
    url: str, *calls: Sequence[str | Path], cwd: Path, env: Sequence[dict[str, str]] = ()
) -> list[subprocess.CompletedProcess[str]]:
    """Independent runs at once: the interpreter's start-up dominates each one."""
    extra = [*env, *([{}] * (len(calls) - len(env)))]
    running = [subprocess.Popen(**_command(url, args, cwd, e)) for args, e in zip(calls, extra, strict=True)]
    done = []
    for process in running:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


async def saved(url: str) -> dict[str, Contact]:
    """Contacts by external id, read afresh."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return {c.external_id: c for c in await session.scalars(select(Contact))}
    finally:
        await engine.dispose()


async def count(url: str, model: Any) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        await engine.dispose()


def execute(url: str, sql: str) -> None:
    """Plain SQL on the test database (a trigger that fails a batch, …)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(str(parsed.database)) as conn:
            conn.executescript(sql)
        return
    with psycopg.connect(
        parsed.set(drivername="postgresql").render_as_string(False), autocommit=True
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def csv_text(rows: Sequence[Sequence[str]], sep: str = ",") -> bytes:
    return ("\n".join(sep.join(r) for r in rows) + "\n").encode()


# ---------------------------------------------------------------- CLI


@pytest.mark.feature("C-01")
@pytest.mark.feature("C-03")
async def test_cli_preview_certify_json_report_and_upsert(sqlite_url: str, tmp_path: Path) -> None:
    file = tmp_path / "contacts.csv"
    file.write_text(
        "External_ID ; email;phone;first_name;last_purchase_at;consent_email_marketing;attr_city\n"
        "c-1;Ana@Example.com;06 12 34 56 78;Ana;31/03/2020;oui;Lyon\n"
        ";bob@example.com;+33612345679;Bob;2024-01-02 10:00:00;no;\n"
        "c-1;ana@example.com;;Anaïs;2021-06-01T08:00:00+02:00;;Paris\n"  # same key: the last row wins
    )
    preview, uncertified = cli_together(sqlite_url, [file, "--preview", "--json"], [file], cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    shown = json.loads(preview.stdout)
    assert [r["line"] for r in shown] == [2, 3, 4]
    assert shown[0]["email"] == "ana@example.com" and shown[0]["phone"] == "+33612345678"
    assert shown[0]["consents"] == {"email_marketing": True} and shown[0]["attributes"] == {"city": "Lyon"}
    assert shown[0]["last_purchase_at"] == "2020-03-30T22:00:00+00:00"  # Paris midnight
    assert await count(sqlite_url, Contact) == 0  # a preview writes nothing
    assert uncertified.returncode == 2
    assert "add --certify" in uncertified.stderr and await count(sqlite_url, Contact) == 0

    first = cli(sqlite_url, file, "--certify", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "accepted": 2, "updated": 0, "rejected": [], "excluded_three_year_rule": 1,
    }  # fmt: skip
    contacts = await saved(sqlite_url)
    assert len(contacts) == 2
    ana = contacts["c-1"]
    assert (ana.first_name, ana.phone, ana.attributes) == ("Anaïs", None, {"city": "Paris"})
    assert ana.last_purchase_at == datetime(2021, 6, 1, 6, tzinfo=UTC)
    bob = next(c for c in contacts.values() if c.email == "bob@example.com")
    assert bob.external_id.startswith("rc_") and len(bob.external_id) == 19

    # Again, with Bob's row now keyed by email and a list: updated, never duplicated.
    again = cli(sqlite_url, file, "--certify", "--list", "Spring fair", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 new contact(s), 2 updated; all in list 'Spring fair'" in again.stdout
    assert "marketing messages will not reach them (3-year rule)" in again.stdout
    assert set(await saved(sqlite_url)) == set(contacts)
    assert await count(sqlite_url, ListMember) == 2 and await count(sqlite_url, ContactList) == 1


@pytest.mark.feature("C-02")
@pytest.mark.feature("C-03")
async def test_cli_refuses_wrong_headers_broken_quoting_and_an_unreachable_temporal(
    sqlite_url: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(csv_text([["email"], ["ana@example.com"]]))
    scenario_down = {
        "RELANCE_IMPORT_EVENT": "contact_imported",
        "RELANCE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    wrong, broken, down, rot13, odd_separator = cli_together(
        sqlite_url,
        [DATA / "wrong_headers.csv", "--certify"],
        [DATA / "broken_quote.csv", "--certify"],
        [good, "--certify"],
        [good, "--certify", "--encoding", "rot13"],
        [good, "--certify", "--separator", "x"],
        cwd=tmp_path,
        env=[{}, {}, scenario_down],
    )
    # A codec that does not turn bytes into text (rot13, base64) is not an encoding: one line.
    assert rot13.returncode == 2 and "Traceback" not in rot13.stderr
    assert "unknown encoding 'rot13'" in rot13.stderr and len(rot13.stderr.strip().splitlines()) <= 2
    assert odd_separator.returncode == 2 and "separator 'x' is not supported" in odd_separator.stderr
    assert wrong.returncode == 1
    assert "wrong_headers.csv:1: the header is wrong" in wrong.stderr
    assert "unknown column 'Emial': did you mean 'email'?" in wrong.stderr
    assert "unknown column 'lastname': did you mean 'last_name'?" in wrong.stderr
    assert "unknown column 'city': to keep it as a contact attribute, name it 'attr_city'" in wrong.stderr
    assert "Expected columns (any order, case-insensitive): external_id, email, phone" in wrong.stderr

    assert broken.returncode == 1
    assert "broken_quote.csv:3: a closing quote is followed by other characters" in broken.stderr

    # C-02: with a default scenario configured, Temporal must answer before anything is written.
    assert down.returncode == 1
    assert "RELANCE_IMPORT_EVENT is 'contact_imported' but Temporal" in down.stderr
    assert "Nothing was imported." in down.stderr
    assert await count(sqlite_url, Contact) == 0


@pytest.mark.feature("C-01")
async def test_cli_batches_resume_after_a_failed_batch_without_duplicates(
    database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "big.csv"
    rows = [["external_id", "email", "first_name"]]
    rows += [[f"c-{i:04}", f"person{i}@example.com", f"P{i}"] for i in range(1, 61)]
    file.write_bytes(csv_text(rows))
    # A database-level failure in the second batch (lines 22-41): c-0025 is refused by a trigger.
    if database_url.startswith("sqlite"):
        execute(database_url, "CREATE TRIGGER boom BEFORE INSERT ON contacts WHEN NEW.external_id = 'c-0025' "
                              "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END;")  # fmt: skip
        drop = "DROP TRIGGER boom"
    else:
        execute(database_url, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                              "IF NEW.external_id = 'c-0025' THEN RAISE EXCEPTION 'refused by the test trigger'; "
                              "END IF; RETURN NEW; END $$; CREATE TRIGGER boom BEFORE INSERT ON contacts "
                              "FOR EACH ROW EXECUTE FUNCTION boom()")  # fmt: skip
        drop = "DROP TRIGGER boom ON contacts"

    stopped = cli(database_url, file, "--certify", "--batch-size", "20", "--json", cwd=tmp_path)
    assert stopped.returncode == 1
    assert "the database refused the batch of lines 22-41" in stopped.stderr
    assert "refused by the test trigger" in stopped.stderr and "--resume" in stopped.stderr
    assert set(await saved(database_url)) == {f"c-{i:04}" for i in range(1, 21)}
    cursor = json.loads((tmp_path / "big.csv.relance-cursor").read_text())
    assert (cursor["line"], cursor["accepted"]) == (21, 20)

    execute(database_url, drop)
    resumed = cli(database_url, file, "--certify", "--batch-size", "20", "--resume", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {
        "accepted": 60, "updated": 0, "rejected": [], "excluded_three_year_rule": 0,
    }  # fmt: skip
    contacts = await saved(database_url)
    assert set(contacts) == {f"c-{i:04}" for i in range(1, 61)} and len(contacts) == 60
    assert not (tmp_path / "big.csv.relance-cursor").exists()


# ---------------------------------------------------------------- API


@pytest.mark.feature("C-01")
async def test_api_reads_every_separator_and_encoding(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        for sample in SAMPLES:
            answer = await http.post(
                "/v1/contacts/import?certify=true", content=(DATA / sample).read_bytes(), headers=CSV
            )
            assert answer.status_code == 200, (sample, answer.text)
            first = sample == SAMPLES[0]
            assert answer.json() == {
                "accepted": 3 if first else 0, "updated": 0 if first else 3,
                "rejected": [], "excluded_three_year_rule": 0,
            }, sample  # fmt: skip
            async with stack.sessions() as session:
                people = {c.email: c for c in await session.scalars(select(Contact))}
                granted = dict(
                    (await session.execute(select(Contact.email, Consent.granted).join(Consent))).all()
                )
            assert set(people) == {"ana@example.com", "bob@example.com", "zoe@example.com"}, sample
            assert (people["ana@example.com"].first_name, people["ana@example.com"].last_name) == (
                "Anaïs", "Lefèvre",
            ), sample  # fmt: skip
            assert (
                people["bob@example.com"].last_name == "Martin, Jr."
                and people["zoe@example.com"].first_name == "Zoé"
            )
            assert granted == {"ana@example.com": True, "bob@example.com": False}
        for codec in ("rot13", "base64", "%00"):
            odd = await http.post(
                f"/v1/contacts/import?certify=true&encoding={codec}",
                content=b"email\nana@example.com\n",
                headers=CSV,
            )
            assert 400 <= odd.status_code < 500, (codec, odd.text)
        # The separator can be given, by name or by character.
        forced = await http.post("/v1/contacts/import?certify=true&separator=pipe",
                                 content=(DATA / "pipe.csv").read_bytes(), headers=CSV)  # fmt: skip
        assert forced.status_code == 200 and forced.json()["updated"] == 3


@pytest.mark.feature("C-03")
async def test_api_all_or_nothing_then_skip_invalid_with_line_reasons(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    body = (
        b"external_id,email,phone,time_zone,last_purchase_at,consent_sms_marketing\n"
        b"a,ana@example.com,0612345678,Europe/Paris,2024-05-01,yes\n"  # ISO date
        b"b,not-an-email,,,,\n"
        b"c,cy@example.com,12,,,\n"
        b"d,dan@example.com,,Mars/Olympus,,\n"
        b"e,eve@example.com,,,31/13/2024,\n"
        b"f,fay@example.com,,,,maybe\n"
        b",,,,,\n"  # a blank row is skipped, not rejected
        b",,+41 44 668 18 00,,,\n"
        b"g,gus@example.com,+1 415 555 2671,America/New_York,15/01/2020 09:30,non\n"  # DD/MM/YYYY HH:MM
        b"h,hal@example.com,,,2019-07-14 18:00:00,\n"  # YYYY-MM-DD HH:MM:SS
        b"i,ivy@example.com,,,2025-02-03T04:05:06Z,\n"  # ISO with Z
        b"j,jo@example.com,,,03/02/2025,\n"  # DD/MM/YYYY
    )
    rejected = [
        {"line": 3, "reason": "email: 'not-an-email' is not a valid email address: An email address must have an @-sign."},
        {"line": 4, "reason": "phone: '12' is not a valid phone number: write it as +33612345678 (or as a national number of FR, the default region)"},
        {"line": 5, "reason": "time_zone: 'Mars/Olympus' is not an IANA time zone such as Europe/Paris"},
        {"line": 6, "reason": "last_purchase_at: '31/13/2024' is not a date: write 2024-03-31, 2024-03-31T14:30:00+02:00, 31/03/2024 or 31/03/2024 14:30"},
        {"line": 7, "reason": "consent_sms_marketing: 'maybe' is not yes or no (accepted: yes/no, true/false, 1/0, oui/non; empty: unchanged)"},
        {"line": 9, "reason": "external_id and email are both empty: give one of them to identify the contact"},
    ]  # fmt: skip
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        refused = await http.post("/v1/contacts/import?certify=true&list=Fair", content=body, headers=CSV)
        assert refused.status_code == 422
        assert refused.json() == {
            "accepted": 0,
            "updated": 0,
            "rejected": rejected,
            "excluded_three_year_rule": 0,
        }
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Contact)) == 0
            assert await session.scalar(select(func.count()).select_from(ContactList)) == 0

        skipped = await http.post("/v1/contacts/import?certify=true&skip_invalid=true&list=Fair",
                                  content=body, headers=CSV)  # fmt: skip
        assert skipped.status_code == 200
        assert skipped.json() == {
            "accepted": 5,
            "updated": 0,
            "rejected": rejected,
            "excluded_three_year_rule": 2,
        }
        async with stack.sessions() as session:
            people = {c.external_id: c for c in await session.scalars(select(Contact))}
            members = await session.scalar(select(func.count()).select_from(ListMember))
            consents = (
                await session.execute(select(Contact.external_id, Consent.granted).join(Consent))
            ).all()
    assert set(people) == {"a", "g", "h", "i", "j"} and members == 5
    assert people["a"].phone == "+33612345678" and people["g"].phone == "+14155552671"
    assert people["a"].last_purchase_at == datetime(2024, 4, 30, 22, tzinfo=UTC)
    assert people["g"].last_purchase_at == datetime(2020, 1, 15, 14, 30, tzinfo=UTC)  # New York time
    assert people["h"].last_purchase_at == datetime(2019, 7, 14, 16, tzinfo=UTC)
    assert people["i"].last_purchase_at == datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert people["j"].last_purchase_at == datetime(2025, 2, 2, 23, tzinfo=UTC)
    assert sorted(consents) == [("a", True), ("g", False)]


@pytest.mark.feature("C-01")
async def test_api_upserts_on_external_id_else_email(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        made = await http.post("/v1/contacts", json={"external_id": "crm-7", "email": "kim@example.com",
                                                     "first_name": "Kim", "attributes": {"tier": "gold"},
                                                     "last_purchase_at": "2025-01-01T00:00:00Z"})  # fmt: skip
        assert made.status_code == 200
        body = (
            b"email;first_name;phone;last_purchase_at;attr_shop\n"
            b"KIM@example.com ;Kimberly;;2020-01-01;Lyon\n"  # matches crm-7 by email; the older date is ignored
            b"new@example.com;New;;;\n"
            b"new@example.com;Newer;;;\n"  # the same key twice: the last row wins, counted once
        )
        first = await http.post("/v1/contacts/import?certify=true", content=body, headers=CSV)
        assert first.json() == {"accepted": 1, "updated": 1, "rejected": [], "excluded_three_year_rule": 0}
        second = await http.post("/v1/contacts/import?certify=true", content=body, headers=CSV)
        assert second.json() == {"accepted": 0, "updated": 2, "rejected": [], "excluded_three_year_rule": 0}
        async with stack.sessions() as session:
            people = {c.email: c for c in await session.scalars(select(Contact))}
    assert len(people) == 2
    kim = people["kim@example.com"]
    assert (kim.external_id, kim.first_name, kim.attributes) == (
        "crm-7",
        "Kimberly",
        {"tier": "gold", "shop": "Lyon"},
    )
    assert kim.last_purchase_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert people["new@example.com"].first_name == "Newer"


@pytest.mark.feature("C-03")
async def test_api_refuses_unreadable_files_and_missing_certification(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    async with running_stack(time_env.client, database_url) as stack, api_client(stack) as http:
        body = (DATA / "tab.tsv").read_bytes()
        uncertified = await http.post("/v1/contacts/import", content=body, headers=CSV)
        assert uncertified.status_code == 400
        assert uncertified.json()["details"][0]["field"] == "certify"

        wrong = await http.post("/v1/contacts/import?certify=true",
                                content=(DATA / "wrong_headers.csv").read_bytes(), headers=CSV)  # fmt: skip
        assert wrong.status_code == 400
        assert wrong.json()["details"] == [
            {"field": "emial", "message": "unknown column 'Emial': did you mean 'email'?"},
            {"field": "lastname", "message": "unknown column 'lastname': did you mean 'last_name'?"},
            {"field": "city", "message": "unknown column 'city': to keep it as a contact attribute, name it 'attr_city'"},
            {"field": "header", "message": "the file needs an 'email' or an 'external_id' column (or both) to identify contacts"},
        ]  # fmt: skip
        assert "Expected columns (any order, case-insensitive): external_id, email" in wrong.json()["error"]

        mixed = await http.post("/v1/contacts/import?certify=true",
                                content=(DATA / "mixed_separators.csv").read_bytes(), headers=CSV)  # fmt: skip
        assert mixed.status_code == 400
        assert mixed.json()["details"] == [{"field": "line 3", "message": (
            "1 fields where the header has 3 (separator: semicolon): a separator too many or too few, "
            "mixed separators, or a quote opened and not closed; fix this line")}]  # fmt: skip
        unclosed = await http.post("/v1/contacts/import?certify=true",
                                   content=b'email,first_name\na@example.com,"Ann\nb@example.com,Bo\n', headers=CSV)  # fmt: skip
        assert unclosed.status_code == 400
        assert unclosed.json()["details"][0]["message"].startswith(
            "a quoted field opened on line 2 is never closed"
        )
        for bad, message in [
            (b"", "the file is empty"),
            (
                b"email;first_name,last_name\n",
                "the header line mixes separators: comma ',' (1x), semicolon ';' (1x)",
            ),
        ]:
            answer = await http.post("/v1/contacts/import?certify=true", content=bad, headers=CSV)
            assert answer.status_code == 400 and message in answer.json()["error"]
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Contact)) == 0


DEFAULT_SCENARIO = """\
scenario: welcome
journeys:
  - id: hello
    trigger: {event: contact_imported}
    messages:
      - id: hello
        template: referral/post_purchase_invite
        delay: 1 day
"""


@pytest.mark.feature("C-02")
async def test_new_contacts_enter_the_default_scenario_once(
    time_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "welcome.yaml").write_text(DEFAULT_SCENARIO)
    async with (
        running_stack(time_env.client, sqlite_url, scenarios_dir=scenarios, import_event="contact_imported") as stack,
        api_client(stack) as http,
    ):  # fmt: skip
        await http.post("/v1/contacts", json={"external_id": "old", "email": "old@example.com"})
        body = csv_text([
            ["external_id", "email", "first_name", "consent_email_marketing"],
            ["old", "old@example.com", "Old", "yes"],
            ["n-1", "ana@example.com", "Ana", "yes"],
            ["", "bob@example.com", "Bob", "yes"],
        ])  # fmt: skip
        first = await http.post("/v1/contacts/import?certify=true", content=body, headers=CSV)
        assert first.json() == {"accepted": 2, "updated": 1, "rejected": [], "excluded_three_year_rule": 0}
        async with stack.sessions() as session:
            runs = list(await session.scalars(select(JourneyRun)))
            keys = set(await session.scalars(select(Event.key)))
            bob = await session.scalar(select(Contact.external_id).where(Contact.email == "bob@example.com"))
        assert len(runs) == 2 and {r.scenario for r in runs} == {"welcome"}
        assert len(keys) == 2 and all(k.startswith("import:") for k in keys)
        assert {k.rsplit(":", 1)[1] for k in keys} == {"n-1", "bob@example.com"}
        async with time_skipping(stack.client):
            for run in runs:
                await stack.client.get_workflow_handle_for(JourneyWorkflow.run, run.workflow_id).result()
        assert sorted(m.to for m in stack.channel.messages) == ["ana@example.com", "bob@example.com"]  # type: ignore[attr-defined]

        again = await http.post("/v1/contacts/import?certify=true", content=body, headers=CSV)
        assert again.json()["updated"] == 3
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(JourneyRun)) == 2
    assert bob is not None and bob.startswith("rc_")


# ---------------------------------------------------------------- parser


def test_each_sample_reads_the_same_contacts() -> None:
    for sample in SAMPLES:
        with (DATA / sample).open("rb") as stream:
            prepared, rows = preview_rows(stream, ImportOptions(), 10)
        assert all(isinstance(r, ContactRow) for r in rows)
        assert [(r.line, r.email, r.first_name, r.last_name) for r in rows] == [  # type: ignore[union-attr]
            (2, "ana@example.com", "Anaïs", "Lefèvre"),
            (3, "bob@example.com", "Bob", "Martin, Jr."),
            (4, "zoe@example.com", "Zoé", None),
        ], sample
    assert prepared.encoding == "utf-8"


HEADERS = [
    "email",
    "external_id",
    "first_name",
    "phone",
    "last_purchase_at",
    "consent_email_marketing",
    "attr_x",
]
CELLS = st.text(alphabet=st.sampled_from(list('ab@.,;|\t"\n\r 0é+/:-')), max_size=12)


@st.composite
def csvish(draw: st.DrawFn) -> bytes:
    sep = draw(st.sampled_from([",", ";", "|", "\t"]))
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=5))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=6), max_size=6))
    text = sep.join(header) + "\n" + "\n".join(sep.join(r) for r in rows)
    return text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-8-sig"])), errors="replace")


@pytest.mark.feature("C-03")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=200), csvish()))
def test_the_parser_reads_or_says_why_never_crashes(data: bytes) -> None:
    try:
        preview_rows(io.BytesIO(data), ImportOptions(), 1000)
    except ImportFileError as error:
        assert str(error)
