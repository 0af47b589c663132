"""Promo codes as rewards: pools loaded by operators, generated codes, one code per reward key (R-12)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from alembic import command
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from typer.testing import CliRunner

from relance.activities.promo_code import RewardActivities
from relance.api.promo_codes import router as promo_code_routes
from relance.cli.promo_codes import promo_codes_app
from relance.core.db import create_engine, session_factory
from relance.core.migrate import alembic_config, upgrade
from relance.core.settings import Settings, get_settings
from relance.models.promo_code import PromoCodeRequest
from relance.models.tables.contact import Contact
from relance.models.tables.promo_code import PromoCode
from relance.promo_codes.service import (
    BadCodes,
    PoolExhausted,
    assign_code,
    assign_generated,
    generate_code,
    load_pool,
    pool_stats,
)
from relance.starter.facade import Relance

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SECRET = "s3cret-for-tests"


@pytest_asyncio.fixture(loop_scope="session")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def contact(sessions: async_sessionmaker[AsyncSession], external_id: str) -> int:
    async with sessions() as session, session.begin():
        row = Contact(external_id=external_id, email=f"{external_id}@example.com")
        session.add(row)
        await session.flush()
        return row.id


async def load(sessions: async_sessionmaker[AsyncSession], pool: str, codes: list[str]) -> None:
    async with sessions() as session, session.begin():
        await load_pool(session, pool, codes)


async def assign(
    sessions: async_sessionmaker[AsyncSession], key: str, pool: str = "ten", contact_id: int | None = None
) -> str:
    async with sessions() as session, session.begin():
        return await assign_code(session, pool=pool, key=key, contact_id=contact_id, now=NOW)


async def ledger(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str, str | None]]:
    async with sessions() as session:
        rows = await session.scalars(select(PromoCode).order_by(PromoCode.id))
        return [(r.pool, r.code, r.status, r.assigned_key) for r in rows]


@pytest.mark.feature("R-12")
async def test_a_key_gets_one_code_from_the_pool_ever(sessions: async_sessionmaker[AsyncSession]) -> None:
    mia = await contact(sessions, "mia")
    await load(sessions, "ten", ["TEN-AAA", "TEN-BBB"])
    first = await assign(sessions, "reward-R1", contact_id=mia)
    assert first == "TEN-AAA"
    assert await assign(sessions, "reward-R1", contact_id=mia) == first  # a retry: the same code
    # Whatever pool a later attempt names, the key's reward is the code already given.
    await load(sessions, "other", ["OTH-111"])
    assert await assign(sessions, "reward-R1", pool="other", contact_id=mia) == first
    assert await assign(sessions, "reward-R2") == "TEN-BBB"
    async with sessions() as session:
        assert (await pool_stats(session, "ten")).model_dump() == {
            "pool": "ten",
            "available": 0,
            "assigned": 2,
        }
        row = await session.scalar(select(PromoCode).where(PromoCode.assigned_key == "reward-R1"))
        assert row is not None and (row.contact_id, row.assigned_at) == (mia, NOW)


@pytest.mark.feature("R-12")
async def test_an_empty_pool_says_how_to_refill_it_and_the_reward_then_gets_a_code(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, "ten", ["TEN-AAA"])
    await assign(sessions, "reward-R1")
    with pytest.raises(PoolExhausted) as raised:
        await assign(sessions, "reward-R2")
    assert str(raised.value).startswith(
        "promo-code pool 'ten' is empty: load more codes with `relance promo-codes load ten FILE`"
    )
    with pytest.raises(PoolExhausted, match="pool 'never-loaded' is empty"):
        await assign(sessions, "reward-R2", pool="never-loaded")
    assert await ledger(sessions) == [
        ("ten", "TEN-AAA", "assigned", "reward-R1")
    ]  # the failure wrote nothing
    await load(sessions, "ten", ["TEN-CCC"])
    assert await assign(sessions, "reward-R2") == "TEN-CCC"


@pytest.mark.feature("R-12")
async def test_loading_skips_codes_already_there_and_a_bad_line_loads_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        report = await load_pool(session, "ten", ["A-100", "A-101", "A-100", " A-102\r"])
    assert report.model_dump() == {"pool": "ten", "added": 3, "duplicates": 1, "available": 3}
    async with sessions() as session, session.begin():
        report = await load_pool(session, "ten", ["A-101", "A-103"])
        # The same codes in another pool are other codes.
        elsewhere = await load_pool(session, "five", ["A-101"])
    assert (report.added, report.duplicates, report.available, elsewhere.added) == (1, 1, 4, 1)
    with pytest.raises(BadCodes) as raised:
        async with sessions() as session, session.begin():
            await load_pool(
                session, "ten", ["A-104", "no spaces", "ok_1", "x", "é-100"], lines=[2, 3, 4, 5, 6]
            )
    assert [(p.line, p.code) for p in raised.value.problems] == [(3, "no spaces"), (5, "x"), (6, "é-100")]
    assert raised.value.problems[1].message == "1 characters: a code has 3 to 64"
    assert "' '" in raised.value.problems[0].message
    async with sessions() as session:
        assert (await pool_stats(session, "ten")).available == 4  # A-104 and ok_1 were not loaded either


@pytest.mark.feature("R-12")
async def test_generated_codes_are_stable_per_key_distinct_and_in_the_ledger(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    code = generate_code(SECRET, "reward-R1", "THANKS")
    assert code == generate_code(SECRET, "reward-R1", "THANKS")
    assert code.startswith("THANKS-") and len(code) == len("THANKS-XXXX-XXXX")
    assert not set(code.removeprefix("THANKS-").replace("-", "")) & set("01OIL")
    others = {generate_code(SECRET, f"reward-R{n}", "THANKS") for n in range(2000)}
    assert len(others) == 2000
    assert generate_code("another secret", "reward-R1", "THANKS") != code

    mia = await contact(sessions, "mia")
    async with sessions() as session, session.begin():
        given = await assign_generated(
            session, key="reward-R1", contact_id=mia, prefix="THANKS", secret=SECRET, now=NOW
        )
        again = await assign_generated(
            session, key="reward-R1", contact_id=mia, prefix="THANKS", secret=SECRET, now=NOW
        )
        second = await assign_generated(
            session, key="reward-R2", contact_id=mia, prefix="THANKS", secret=SECRET, now=NOW
        )
    assert given == again == code and second != code
    assert await ledger(sessions) == [
        ("generated:THANKS", code, "assigned", "reward-R1"),
        ("generated:THANKS", second, "assigned", "reward-R2"),
    ]
    async with sessions() as session:
        assert (await pool_stats(session, "generated:THANKS")).assigned == 2


@pytest.mark.feature("R-12")
async def test_a_generated_code_taken_by_another_key_is_derived_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    taken = generate_code(SECRET, "reward-R9", "THANKS")
    # An operator loaded into the generated pool the very code reward-R9 would get.
    async with sessions() as session, session.begin():
        session.add(PromoCode(pool="generated:THANKS", code=taken, status="assigned", assigned_key="manual-1",
                              assigned_at=NOW, created_at=NOW))  # fmt: skip
    async with sessions() as session, session.begin():
        code = await assign_generated(
            session, key="reward-R9", contact_id=None, prefix="THANKS", secret=SECRET, now=NOW
        )
    assert code != taken and code == generate_code(SECRET, "reward-R9#1", "THANKS")


@pytest.mark.feature("R-12")
async def test_concurrent_rewards_never_get_the_same_code(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, "ten", [f"CODE-{n:03}" for n in range(30)])
    outcomes = await asyncio.gather(
        *(assign(sessions, f"reward-{n}") for n in range(40)), return_exceptions=True
    )
    codes = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(codes) == 30 and len(set(codes)) == 30
    assert all(isinstance(o, PoolExhausted) for o in refused) and len(refused) == 10
    async with sessions() as session:
        assert (await pool_stats(session, "ten")).model_dump() == {
            "pool": "ten",
            "available": 0,
            "assigned": 30,
        }


@pytest.mark.postgres
@pytest.mark.feature("R-12")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_attempts_for_one_key_at_once_give_one_code(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, "ten", ["TEN-AAA", "TEN-BBB", "TEN-CCC"])
    async with sessions() as first, first.begin():
        code = await assign_code(first, pool="ten", key="reward-R1", contact_id=None, now=NOW)
        # The second attempt takes another code, then waits on the key held by the first transaction.
        second = asyncio.create_task(assign(sessions, "reward-R1"))
        await asyncio.sleep(0.5)
        assert not second.done()
    assert await second == code  # it lost the race: it gives back its code and returns the first one
    async with sessions() as session:
        assert (await pool_stats(session, "ten")).model_dump() == {
            "pool": "ten",
            "available": 2,
            "assigned": 1,
        }


@pytest.mark.feature("R-12")
async def test_the_activity_retries_on_an_empty_pool_and_never_assigns_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await contact(sessions, "mia")
    activities = RewardActivities(sessions=sessions, secret=SECRET)
    env = ActivityEnvironment()
    request = PromoCodeRequest(key="reward-R1", contact="mia", pool="ten")
    with capture_logs() as logs, pytest.raises(ApplicationError) as raised:
        await env.run(activities.assign_promo_code, request)
    assert raised.value.type == "PoolExhausted" and not raised.value.non_retryable
    assert "relance promo-codes load ten FILE" in raised.value.message
    assert [(e["event"], e["log_level"], e["pool"]) for e in logs] == [
        ("promo_code_pool_exhausted", "warning", "ten")
    ]

    await load(sessions, "ten", ["TEN-AAA", "TEN-BBB"])
    result = await env.run(activities.assign_promo_code, request)
    assert (result.pool, result.code, result.contact) == ("ten", "TEN-AAA", "mia")
    assert (await env.run(activities.assign_promo_code, request)).code == "TEN-AAA"
    generated = PromoCodeRequest(key="reward-R2", contact="mia", mode="generated", prefix="THANKS")
    assert (await env.run(activities.assign_promo_code, generated)).code == generate_code(
        SECRET, "reward-R2", "THANKS"
    )
    async with sessions() as session:
        assert (await pool_stats(session, "ten")).model_dump() == {
            "pool": "ten",
            "available": 1,
            "assigned": 1,
        }

    with pytest.raises(ApplicationError) as unknown:
        await env.run(
            activities.assign_promo_code, PromoCodeRequest(key="reward-R3", contact="nobody", pool="ten")
        )
    assert unknown.value.non_retryable and unknown.value.message == "no contact 'nobody'"
    with pytest.raises(ApplicationError) as bad_pool:
        await env.run(
            activities.assign_promo_code, PromoCodeRequest(key="reward-R3", contact="mia", pool="a b")
        )
    assert bad_pool.value.non_retryable and "pool name 'a b' is invalid" in bad_pool.value.message


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("RELANCE_DATABASE_URL", url)
    get_settings.cache_clear()  # the CLI reads the settings once per process
    yield url
    get_settings.cache_clear()


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(promo_codes_app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.feature("R-12")
def test_the_cli_loads_a_file_and_refuses_a_bad_line_without_writing(
    cli_database: str, tmp_path: Path
) -> None:
    codes = tmp_path / "codes.txt"
    codes.write_text("SPRING-001\n\nSPRING-002\nSPRING-001\n")
    status, out, _ = cli("load", "spring", str(codes), "--json")
    assert status == 0 and json.loads(out) == {"pool": "spring", "added": 2, "duplicates": 1, "available": 2}

    sheet = tmp_path / "codes.csv"
    sheet.write_text("\ufeffCode;Value\nSPRING-003;10\nSPRING-002;10\n")
    status, out, _ = cli("load", "spring", str(sheet))
    assert status == 0
    assert out.strip() == "pool 'spring': 1 code(s) added, 1 already there (skipped); 3 available"

    broken = tmp_path / "broken.csv"
    broken.write_text("id,code\n1,SPRING-004\n2,SPRING 005\n3,\n")
    status, out, err = cli("load", "spring", str(broken))
    assert status == 1 and out == ""
    assert f"{broken}:3: 'SPRING 005': characters [' '] are not allowed" in err
    assert f"{broken}:4: '': 0 characters: a code has 3 to 64" in err
    assert "nothing was loaded into pool 'spring'" in err
    status, out, _ = cli("load", "spring", str(broken), "--json")
    report = json.loads(out)
    assert status == 1 and [d["line"] for d in report["details"]] == [3, 4]

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    status, _, err = cli("load", "spring", str(empty))
    assert status == 1 and "no codes in the file" in err

    status, out, _ = cli("stats", "spring")
    assert (status, out.strip()) == (0, "pool 'spring': 3 available, 0 given")  # SPRING-004 was not loaded
    status, out, _ = cli("stats", "spring", "--json")
    assert json.loads(out) == {"pool": "spring", "available": 3, "assigned": 0}
    status, _, err = cli("stats", "sprnig")
    assert status == 1 and "relance promo-codes load sprnig FILE" in err


@pytest.mark.feature("R-12")
async def test_the_api_loads_codes_and_shows_what_is_left(
    time_env: WorkflowEnvironment, database_url: str
) -> None:
    engine = create_engine(database_url)
    app = FastAPI()
    app.include_router(promo_code_routes)
    app.state.relance = Relance(time_env.client, engine, Settings(database_url=database_url))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
            loaded = await http.post(
                "/v1/promo-codes/summer", json={"codes": ["SUM-001", "SUM-002", "SUM-001"]}
            )
            assert loaded.status_code == 200, loaded.text
            assert loaded.json() == {"pool": "summer", "added": 2, "duplicates": 1, "available": 2}
            refused = await http.post("/v1/promo-codes/summer", json={"codes": ["SUM-003", "S", "SUM/4"]})
            assert refused.status_code == 422
            assert [d["field"] for d in refused.json()["details"]] == ["codes.1", "codes.2"]
            assert "nothing was loaded" in refused.json()["error"]
            bad_pool = await http.post("/v1/promo-codes/sum mer", json={"codes": ["SUM-003"]})
            assert (
                bad_pool.status_code == 422 and "pool name 'sum mer' is invalid" in bad_pool.json()["error"]
            )
            async with session_factory(engine)() as session, session.begin():
                await assign_code(session, pool="summer", key="reward-R1", contact_id=None, now=NOW)
            stats = await http.get("/v1/promo-codes/summer")
            assert stats.json() == {"pool": "summer", "available": 1, "assigned": 1}
            unknown = await http.get("/v1/promo-codes/winter")
            assert (
                unknown.status_code == 404
                and "POST them to /v1/promo-codes/winter" in unknown.json()["error"]
            )
    finally:
        await engine.dispose()


def test_the_migration_goes_down_and_up_again(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0011")
    command.upgrade(config, "head")
