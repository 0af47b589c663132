"""A bulk send to N contacts on the null channel: recipients per second and peak memory.

    uv run python bench/broadcast.py [-n 100000] [--database-url postgresql://...]

relance: "send" to a list of N opted-in contacts (safety delay 0, no pacing
limit) through the BroadcastWorkflow: audience snapshot, batches through the
delivery path (eligibility, commercial pressure, rendering, ledger claim and
record). Baseline, in the same run and database: the bare minimum a send that
never sends twice must write, one ledger row per recipient inserted with
``executemany`` in batches of the same size. The ratio relance/baseline is the
figure to watch; recipients/s and the worker's peak RSS are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import insert, text
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relance.broadcasts.service import Broadcasts
from relance.channels.memory import NullChannel
from relance.core.db import create_engine, session_factory
from relance.core.logs import configure_logging
from relance.core.migrate import upgrade
from relance.core.settings import Settings
from relance.devstack.binaries import temporal_cli
from relance.models.broadcast import BroadcastIn
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.delivery import Delivery
from relance.models.tables.list import ContactList, ListMember
from relance.templates.engine import TemplateStore
from relance.worker import build_worker
from relance.workflows.broadcast import BroadcastWorkflow

BATCH = 1000
ROOT = Path(__file__).resolve().parent.parent


def database(url: str | None, tmp: Path) -> str:
    if not url:
        return f"sqlite:///{tmp / 'bench.db'}"
    admin, name = url.rsplit("/", 1)
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


async def populate(sessions, n: int) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(ContactList(id=1, name="Everyone", created_at=now, updated_at=now))
        for start in range(0, n, 10_000):
            ids = range(start + 1, min(n, start + 10_000) + 1)
            await session.execute(
                insert(Contact),
                [{"id": i, "external_id": f"c{i}", "email": f"c{i}@example.com", "attributes": {},
                  "created_at": now, "updated_at": now} for i in ids],
            )  # fmt: skip
            await session.execute(
                insert(Consent),
                [{"contact_id": i, "channel": "email", "purpose": "marketing", "granted": True,
                  "source": "bench", "updated_at": now} for i in ids],
            )  # fmt: skip
            await session.execute(
                insert(ListMember), [{"list_id": 1, "contact_id": i, "added_at": now} for i in ids]
            )


async def baseline(sessions, n: int) -> float:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        async with sessions() as session, session.begin():
            await session.execute(
                insert(Delivery),
                [{"idempotency_key": f"baseline:{i}", "workflow_id": "baseline", "scenario": "baseline",
                  "journey": "b", "message": "m", "channel": "email", "contact_id": i,
                  "contact_external_id": f"c{i}", "status": "sent", "at": now, "attempts": 1,
                  "created_at": now, "updated_at": now}
                 for i in range(start + 1, min(n, start + BATCH) + 1)],
            )  # fmt: skip
    elapsed = time.perf_counter() - started
    async with sessions() as session, session.begin():
        await session.execute(text("DELETE FROM deliveries WHERE workflow_id = 'baseline'"))
    return elapsed


async def main(n: int, url: str | None) -> None:
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as tmp:
        url = database(url, Path(tmp))
        upgrade(url)
        engine = create_engine(url, pool_size=30) if url.startswith("postgresql") else create_engine(url)
        sessions = session_factory(engine)
        await populate(sessions, n)
        base = await baseline(sessions, n)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(), data_converter=pydantic_data_converter,
            dev_server_extra_args=["--log-level", "error"],
        )  # fmt: skip
        async with env:
            settings = Settings(
                database_url=url,
                task_queue=f"bench-{uuid.uuid4().hex[:6]}",
                templates_dir=ROOT / "examples" / "templates",
                broadcast_safety_delay_seconds=0,
                broadcast_batch_size=BATCH,
                broadcast_rate_per_second=1_000_000,
                tracking=False,
            )
            worker = build_worker(
                env.client, settings, sessions, NullChannel(), TemplateStore(settings.templates_dir)
            )
            async with worker:
                broadcasts = Broadcasts(env.client, sessions, settings)
                started = time.perf_counter()
                state = await broadcasts.schedule(
                    BroadcastIn.model_validate(
                        {
                            "name": "bench",
                            "audience": {"list": "Everyone"},
                            "template": "referral/post_purchase_invite",
                        }
                    )
                )
                handle = env.client.get_workflow_handle_for(
                    BroadcastWorkflow.run, f"broadcast:{state.broadcast_id}"
                )
                done = await handle.result()
                elapsed = time.perf_counter() - started
        await engine.dispose()
    assert done.report is not None and done.report.sent == n, done.report
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(f"bulk send to {n} contacts, null channel, app DB {backend}, batches of {BATCH}")
    print(f"baseline (ledger rows only)  {n / base:9.0f} recipients/s")
    print(f"relance (send to report)     {n / elapsed:9.0f} recipients/s  ({elapsed:.1f} s)")
    print(f"ratio                        {base / elapsed:9.3f}")
    print(f"peak memory (worker process) {peak_mb:9.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.database_url))
