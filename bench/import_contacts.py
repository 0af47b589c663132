"""Contact import throughput against a bare PostgreSQL COPY of the same file.

    uv run python bench/import_contacts.py -n 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/relance_bench_import

Creates (and drops at the end) the database, migrates it, writes a CSV of N contacts
to a temporary file, then times:
  1. COPY of the file into an unlogged table of the same columns (the floor: no checks);
  2. the relance import of the same file (parse, check every email and phone, stage, upsert).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from relance.core.db import create_engine
from relance.core.migrate import upgrade
from relance.imports.options import ImportOptions
from relance.imports.run import import_csv, prepare

HEADER = "external_id,email,phone,first_name,last_name,last_purchase_at,consent_email_marketing,attr_shop"
FIRST = ["Anaïs", "Bruno", "Chloé", "David", "Emma", "Farid", "Gaëlle", "Hugo", "Inès", "Jules"]
ASCII = str.maketrans("ïéëè", "ieee")
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"]
DOMAINS = ["example.com", "mail.example.org", "orange.example.fr", "free.example.fr", "gmail.example.com"]
SHOPS = ["Lyon", "Paris", "Nantes", "Lille"]


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            bought = (start + timedelta(minutes=rng.randrange(3_000_000))).strftime("%Y-%m-%d %H:%M:%S")
            out.write(
                f"crm-{i:08d},{first.lower().translate(ASCII)}.{last.lower()}{i}@{rng.choice(DOMAINS)},"
                f"+336{rng.choice('1245678')}{rng.randrange(10**7):07d},{first},{last},{bought},"
                f"{rng.choice(('yes', 'no'))},{rng.choice(SHOPS)}\n"
            )


def baseline(url: str, path: Path) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE UNLOGGED TABLE bench_copy (external_id text, email text, phone text, first_name text, "
            "last_name text, last_purchase_at timestamp, consent_email_marketing text, attr_shop text)"
        )
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy("COPY bench_copy FROM STDIN (FORMAT csv, HEADER)") as copy:
            with path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
    return elapsed


async def relance_import(url: str, path: Path) -> tuple[float, str]:
    engine = create_engine(url)
    try:
        options = ImportOptions()
        started = time.perf_counter()
        with path.open("rb") as stream:
            report = await import_csv(engine, prepare(stream, options), options)
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    summary = (
        f"accepted={report.accepted} updated={report.updated} rejected={report.rejected_count} "
        f"excluded_three_year_rule={report.excluded_three_year_rule}"
    )
    return elapsed, summary


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("-n", type=int, default=100_000, help="rows in the generated CSV")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/relance_bench_import")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    url = make_url(args.database_url)
    if url.get_backend_name() != "postgresql":
        parser.error("the baseline is a PostgreSQL COPY: give a postgresql:// URL")
    name = url.database
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    target = url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(target)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "contacts.csv"
            started = time.perf_counter()
            write_csv(path, args.n)
            size = path.stat().st_size
            print(f"generated {args.n} rows ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s")
            copy_s = baseline(target, path)
            import_s, summary = asyncio.run(relance_import(target, path))
        print(f"COPY baseline : {copy_s:8.2f}s  {args.n / copy_s:12,.0f} rows/s")
        print(f"relance import: {import_s:8.2f}s  {args.n / import_s:12,.0f} rows/s  ({summary})")
        print(f"ratio relance/COPY (throughput): {copy_s / import_s:.3f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory of this process: {peak:.0f} MB (file: {size / 1e6:.0f} MB)")
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
