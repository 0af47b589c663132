"""The per-message monthly report on PostgreSQL, against a plain GROUP BY over the same ledger.

    uv run python bench/reports.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/relance_bench_reports --deliveries 1000000

Drops and creates the database, migrates it, loads with COPY one contact per 10 deliveries,
the deliveries over 12 months (3 scenarios, 8 messages, email and SMS; 90 % sent, 3 %
bounced, the rest skipped), their delivery events (opens, clicks, bounces, unsubscribes,
complaints: about 0.5 per delivery) and one purchase per 20 deliveries. Then times, in the same
process and over the same connection, ``message_report`` for the whole year and the
hand-written ``SELECT … count(*) FROM deliveries GROUP BY scenario, journey, message,
channel, month`` (median of 3 runs after a warm-up each), and prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from relance.core.db import create_engine
from relance.core.migrate import upgrade
from relance.reports.messages import message_report

START = datetime(2025, 7, 1, tzinfo=UTC)
END = datetime(2026, 7, 1, tzinfo=UTC)
MESSAGES = [
    ("referral", "post_purchase", "invite", "email"),
    ("referral", "post_purchase", "reminder", "email"),
    ("referral", "post_purchase", "invite_sms", "sms"),
    ("winback", "lapsed", "first", "email"),
    ("winback", "lapsed", "second", "email"),
    ("winback", "lapsed", "last_call", "sms"),
    ("giftcards", "notice", "expiry", "email"),
    ("giftcards", "notice", "expiry_sms", "sms"),
]
# The plain aggregate: one scan, one GROUP BY, none of the report's joins.
BASELINE = text(
    """
    SELECT scenario, journey, message, channel, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
           count(*) AS sent
    FROM deliveries
    WHERE status IN ('sent', 'bounced') AND at >= :since AND at < :until
    GROUP BY 1, 2, 3, 4, 5
    """
)


def recreate(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def contact_lines(n: int) -> Iterator[str]:
    stamp = "2025-01-01 00:00:00+00"
    for i in range(1, n + 1):
        yield f"{i}\tc{i}\tc{i}@example.com\t{{}}\tok\t{stamp}\t{stamp}\n"


class Ledger:
    """Generated rows, the deliveries first; events refer to the deliveries' keys and times."""

    def __init__(self, deliveries: int, contacts: int, seed: int = 11) -> None:
        self.deliveries = deliveries
        self.contacts = contacts
        self.rng = random.Random(seed)
        self.span = (END - START).total_seconds()
        self.events: list[str] = []

    def delivery_lines(self) -> Iterator[str]:
        rng, events = self.rng, self.events
        for i in range(1, self.deliveries + 1):
            scenario, journey, message, channel = rng.choice(MESSAGES)
            contact = rng.randrange(1, self.contacts + 1)
            at = START + timedelta(seconds=rng.random() * self.span)
            roll = rng.random()
            status = "sent" if roll < 0.90 else "bounced" if roll < 0.93 else "skipped"
            key = f"journey:{scenario}:{journey}:c{contact}:{i}:{message}:{channel}"
            if status == "bounced":
                kind = "hard_bounce" if rng.random() < 0.5 else "soft_bounce"
                events.append(f"{key}\t{kind}\t\\N\t{_stamp(at + timedelta(minutes=2))}\n")
            elif status == "sent":
                if rng.random() < 0.35:
                    for _ in range(rng.choice((1, 1, 2, 3))):  # opened, sometimes several times
                        events.append(
                            f"{key}\topen\t\\N\t{_stamp(at + timedelta(hours=rng.random() * 48))}\n"
                        )
                    if rng.random() < 0.2:
                        url = "https://shop.example/"
                        events.append(f"{key}\tclick\t{url}\t{_stamp(at + timedelta(hours=49))}\n")
                if rng.random() < 0.005:
                    events.append(f"{key}\tunsubscribe\t\\N\t{_stamp(at + timedelta(hours=50))}\n")
                if rng.random() < 0.001:
                    events.append(f"{key}\tcomplaint\t\\N\t{_stamp(at + timedelta(hours=51))}\n")
            yield (
                f"{key}\tjourney:{scenario}:{journey}:c{contact}:{i}\t{scenario}\t{journey}\t{message}\t"
                f"{channel}\t{contact}\tc{contact}\t{status}\t{_stamp(at)}\t1\t{_stamp(at)}\t{_stamp(at)}\n"
            )

    def purchase_lines(self) -> Iterator[str]:
        rng = self.rng
        for i in range(1, self.deliveries // 20 + 1):
            at = START + timedelta(seconds=rng.random() * self.span)
            amount = round(rng.uniform(5, 300), 2)
            props = f'{{"order_id": "o{i}", "amount": {amount}}}'
            who = rng.randrange(1, self.contacts + 1)
            yield f"o{i}\tpurchase\t{who}\t{_stamp(at)}\t{_stamp(at)}\t{props}\n"


def copy(conn: psycopg.Connection, sql: str, lines: Iterator[str], label: str) -> None:
    started = time.perf_counter()
    with conn.cursor() as cur, cur.copy(sql) as sink:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 50_000:
                sink.write("".join(chunk))
                chunk.clear()
        if chunk:
            sink.write("".join(chunk))
    print(f"loaded {label} in {time.perf_counter() - started:.1f} s", flush=True)


def load(url: str, deliveries: int) -> None:
    contacts = max(1, deliveries // 10)
    ledger = Ledger(deliveries, contacts)
    dsn = make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(dsn) as conn:
        copy(
            conn,
            "COPY contacts (id, external_id, email, attributes, email_status, created_at, updated_at)"
            " FROM STDIN",
            contact_lines(contacts),
            f"{contacts} contacts",
        )
        conn.execute("SELECT setval('contacts_id_seq', %s)", [contacts])
        copy(
            conn,
            "COPY deliveries (idempotency_key, workflow_id, scenario, journey, message, channel, contact_id,"
            " contact_external_id, status, at, attempts, created_at, updated_at) FROM STDIN",
            ledger.delivery_lines(),
            f"{deliveries} deliveries",
        )
        copy(
            conn,
            "COPY delivery_events (delivery_key, kind, url, at) FROM STDIN",
            iter(ledger.events),
            f"{len(ledger.events)} delivery events",
        )
        copy(
            conn,
            "COPY events (key, type, contact_id, occurred_at, received_at, properties) FROM STDIN",
            ledger.purchase_lines(),
            f"{deliveries // 20} purchases",
        )
        conn.commit()
        started = time.perf_counter()
        conn.execute("ANALYZE")
        conn.commit()
    print(f"ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


async def timed(run: Callable[[], Awaitable[Any]], repeat: int = 3) -> tuple[float, Any]:
    result = await run()  # warm-up: caches, plans; then the median of ``repeat`` runs
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def measure(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            session = AsyncSession(bind=conn)

            async def report() -> list[Any]:
                return await message_report(session, since=START, until=END)

            async def baseline(db: AsyncConnection = conn) -> list[Any]:
                return list((await db.execute(BASELINE, {"since": START, "until": END})).all())

            ours_s, rows = await timed(report)
            plain_s, plain = await timed(baseline)
            await session.close()
    finally:
        await engine.dispose()
    # Same groups, same sends: the report is the plain count plus what it adds.
    assert sorted((r.scenario, r.journey, r.message, r.channel, r.month, r.sent) for r in rows) == sorted(
        tuple(p) for p in plain
    )
    sent = sum(r.sent for r in rows)
    revenue = sum(r.revenue for r in rows)
    print(f"rows: {len(rows)} (message x month); sent {sent}; attributed revenue {revenue:,.2f}")
    print(f"message_report: {ours_s:.3f} s (median of 3)")
    print(f"hand-written GROUP BY: {plain_s:.3f} s (median of 3)")
    print(f"ratio message_report / GROUP BY = {ours_s / plain_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/relance_bench_reports"
    )
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database of a previous run")
    args = parser.parse_args()
    if make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("--database-url must be a PostgreSQL URL")
    if not args.reuse:
        recreate(args.database_url)
        upgrade(args.database_url)
        load(args.database_url, args.deliveries)
    asyncio.run(measure(args.database_url))


if __name__ == "__main__":
    main()
