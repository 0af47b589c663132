"""A four-criteria segment on PostgreSQL, against the same query written by hand.

    uv run python bench/segments.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/relance_bench_segments \\
        --contacts 1000000 --events 10000000

Drops and creates the database, migrates it, loads contacts and events with COPY (10 % of
the contacts, the regulars, get half of the events, over the last 180 days), then times
``club in {A, B} AND status client AND visits >= 3 in 15 days AND age 25-50`` compiled by
relance and the hand-written SQL of the same query, median of 3 runs each after a warm-up,
in the same process. Prints the indexes the plan uses.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Connection, Result, make_url
from sqlalchemy.exc import OperationalError

from relance.core.db import sync_url
from relance.core.migrate import upgrade
from relance.models.tables import segment as segment_tables
from relance.models.tables.event import Event
from relance.segments.audience import audience

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
SEGMENT = {
    "club": ["A", "B"],
    "status": "client",
    "visits": {"min": 3, "days": 15},
    "age": {"min": 25, "max": 50},
}
CLUBS = "ABCDEFGHIJ"
TYPES = ["visit"] * 10 + ["booking"] * 4 + ["page_visit"] * 4 + ["form", "payment_accepted"]
_PEOPLE = """
  c.attributes ->> 'club' IN ('A', 'B')
  AND c.attributes ->> 'status' = 'client'
  AND substr(c.attributes ->> 'birth_date', 1, 10) <= %(oldest)s
  AND substr(c.attributes ->> 'birth_date', 1, 10) > %(youngest)s"""
_REGULARS = """
  SELECT contact_id FROM events
  WHERE type = 'visit' AND occurred_at >= %(since)s AND occurred_at <= %(now)s
  GROUP BY contact_id HAVING count(*) >= 3"""
_IN = f"SELECT count(*) FROM contacts c WHERE {_PEOPLE} AND c.id IN ({_REGULARS})"
_JOIN = f"SELECT count(*) FROM contacts c JOIN ({_REGULARS}) v ON v.contact_id = c.id WHERE {_PEOPLE}"
# The same query by hand. PostgreSQL has no statistics on JSON expressions and guesses the
# contacts filter keeps about one row, so as written it may pick a nested loop that compares
# every filtered contact with every regular; the last variant forbids nested loops.
BASELINES = {
    "IN (subquery)": ("", _IN),
    "JOIN": ("", _JOIN),
    "JOIN, enable_nestloop off": ("SET LOCAL enable_nestloop = off", _JOIN),
}
TIMEOUT_S = 60


def recreate(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(database="postgres").render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')


def contact_lines(n: int, rng: random.Random) -> Iterator[str]:
    start = date(1950, 1, 1).toordinal()
    for i in range(1, n + 1):
        birth = date.fromordinal(start + rng.randrange(20000)).isoformat()
        attrs = {
            "club": rng.choice(CLUBS),
            "status": "client" if rng.random() < 0.6 else "prospect",
            "birth_date": birth,
        }
        stamp = "2024-01-01 00:00:00+00"
        yield f"{i}\tc{i}\tc{i}@example.com\t{json.dumps(attrs)}\tok\t{stamp}\t{stamp}\n"


def event_lines(n: int, contacts: int, rng: random.Random) -> Iterator[str]:
    regulars = max(1, contacts // 10)
    span = 180 * 86400
    base = NOW.timestamp() - span
    for _ in range(n):
        who = rng.randrange(1, regulars + 1) if rng.random() < 0.5 else rng.randrange(1, contacts + 1)
        at = datetime.fromtimestamp(base + rng.random() * span, UTC).strftime("%Y-%m-%d %H:%M:%S+00")
        kind = rng.choice(TYPES)
        props = '{"activity": "yoga"}' if kind == "booking" else "{}"
        yield f"{kind}\t{who}\t{at}\t{at}\t{props}\n"


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


def load(url: str, contacts: int, events: int) -> None:
    rng = random.Random(7)
    dsn = make_url(url).render_as_string(hide_password=False).replace("+psycopg", "")
    indexes = [ix for ix in Event.__table__.indexes if not ix.unique]
    engine = create_engine(sync_url(url))
    with engine.begin() as db:  # the secondary indexes are built once, after the load
        for ix in indexes:
            ix.drop(db)
    with psycopg.connect(dsn) as conn:
        copy(
            conn,
            "COPY contacts (id, external_id, email, attributes, email_status, created_at, updated_at)"
            " FROM STDIN",
            contact_lines(contacts, rng),
            f"{contacts} contacts",
        )
        conn.execute("SELECT setval('contacts_id_seq', %s)", [contacts])
        copy(
            conn,
            "COPY events (type, contact_id, occurred_at, received_at, properties) FROM STDIN",
            event_lines(events, contacts, rng),
            f"{events} events",
        )
        conn.commit()
    started = time.perf_counter()
    with engine.begin() as db:
        for ix in indexes:
            ix.create(db)
        db.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(f"indexes and ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


def timed(run: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    result = run()  # warm-up: caches, plans; then the median of ``repeat`` runs
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        assert run() == result
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def plan_indexes(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(f"{plan['Index Name']} ({plan['Node Type']})")
        for value in plan.values():
            found |= plan_indexes(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= plan_indexes(item)
    return found


def explain(db: Connection, run: Callable[[], Result[Any]]) -> Any:
    """The plan of the statement ``run`` sends, exactly as sent (bound values included)."""

    def prefix(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> Any:
        return "EXPLAIN (FORMAT JSON) " + statement, parameters

    event.listen(db, "before_cursor_execute", prefix, retval=True)
    try:
        return run().scalar()
    finally:
        event.remove(db, "before_cursor_execute", prefix)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/relance_bench_segments"
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database of a previous run")
    args = parser.parse_args()
    if make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("--database-url must be a PostgreSQL URL")
    if not args.reuse:
        recreate(args.database_url)
        upgrade(args.database_url)
        load(args.database_url, args.contacts, args.events)

    engine = create_engine(sync_url(args.database_url))
    counted = select(func.count()).select_from(audience(SEGMENT, NOW).subquery())
    today = NOW.date()
    params = {
        "oldest": f"{today.year - 25:04d}-{today.month:02d}-{today.day:02d}",
        "youngest": f"{today.year - 51:04d}-{today.month:02d}-{today.day:02d}",
        "since": NOW - timedelta(days=15),
        "now": NOW,
    }
    print(f"segment: {json.dumps(SEGMENT)} at {NOW.isoformat()}")
    print(f"contacts: {args.contacts}, events: {args.events}")
    with engine.connect() as db:
        relance_s, relance_n = timed(lambda: int(db.scalar(counted) or 0))
        ours = explain(db, lambda: db.execute(counted))
        db.rollback()
    print(f"relance segment: {relance_s:.3f} s (median of 3), {relance_n} contacts")
    print(f"  indexes: {', '.join(sorted(plan_indexes(ours))) or 'none'}", flush=True)
    for name, (setting, sql) in BASELINES.items():
        with engine.connect() as db:
            db.exec_driver_sql(f"SET LOCAL statement_timeout = '{TIMEOUT_S}s'")
            if setting:
                db.exec_driver_sql(setting)
            try:
                seconds, n = timed(lambda sql=sql: int(db.exec_driver_sql(sql, params).scalar() or 0))
            except OperationalError:
                print(f"hand-written SQL, {name}: over {TIMEOUT_S} s (cancelled)", flush=True)
                continue
            plan = explain(db, lambda sql=sql: db.exec_driver_sql(sql, params))
        assert n == relance_n, (name, n, relance_n)
        ratio = relance_s / seconds
        print(f"hand-written SQL, {name}: {seconds:.3f} s (median of 3); relance / this = {ratio:.2f}")
        print(f"  indexes: {', '.join(sorted(plan_indexes(plan))) or 'none'}", flush=True)
    engine.dispose()
    print(f"index added for segments: {segment_tables.ix_events_type_time.name}")


if __name__ == "__main__":
    main()
