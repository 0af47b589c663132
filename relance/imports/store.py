"""Writing staged rows: a temporary table per transaction, then one upsert into ``contacts``.

PostgreSQL receives the rows by COPY; SQLite by executemany. The SQL after staging
is the same in spirit on both: keep the last row of each key, match existing contacts
(external id, else email), one INSERT … SELECT … ON CONFLICT (external_id) DO UPDATE,
then consents and list members from the same staged rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, Table, Text, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from relance.imports.columns import CHANNELS, PURPOSES, Columns
from relance.imports.rows import ContactRow
from relance.models.tables.base import UTCDateTime

T = "relance_import_rows"
CONSENT_COLUMNS = {(c, p): f"c_{c}_{p}" for c in CHANNELS for p in PURPOSES}
STAGED = (
    "line",
    "key",
    "external_id",
    "new_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "time_zone",
    "attributes",
    "last_purchase_at",
    *CONSENT_COLUMNS.values(),
)
STAGING = Table(
    T,
    MetaData(),
    Column("line", Integer),
    Column("key", Text),
    Column("external_id", Text),
    Column("new_id", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("locale", Text),
    Column("time_zone", Text),
    Column("attributes", Text),
    Column("last_purchase_at", UTCDateTime()),
    *(Column(name, Boolean) for name in CONSENT_COLUMNS.values()),
    Column("contact_id", Integer),  # the contact the row lands on, once known
    Column("target", Text),  # its external id
    Column("is_new", Boolean),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
FLUSH_EVERY = 5000


@dataclass(frozen=True)
class NewContact:
    key: str  # the row's key: its external id, else its email
    external_id: str


@dataclass(frozen=True)
class Merged:
    accepted: int
    updated: int
    excluded_three_year_rule: int
    new: list[NewContact]


def _tuple(row: ContactRow) -> tuple[Any, ...]:
    return (
        row.line,
        row.key,
        row.external_id,
        row.staged_id(),
        row.email,
        row.phone,
        row.first_name,
        row.last_name,
        row.locale,
        row.time_zone,
        row.attributes_json(),
        row.last_purchase_at,
        *(row.consents.get(pair) for pair in CONSENT_COLUMNS),
    )


class Stage:
    """The rows of one transaction: staged as they come, merged at the end."""

    def __init__(self, conn: AsyncConnection, columns: Columns) -> None:
        self.conn = conn
        self.columns = columns
        self.postgres = conn.dialect.name == "postgresql"
        self.rows = 0
        self._buffer: list[tuple[Any, ...]] = []

    async def open(self) -> None:
        if not self.postgres:
            # SQLite keeps temporary tables for the connection's life, and connections are pooled.
            await self.conn.execute(text(f"DROP TABLE IF EXISTS temp.{T}"))
        await self.conn.run_sync(STAGING.create)

    async def add(self, row: ContactRow) -> None:
        self._buffer.append(_tuple(row))
        self.rows += 1
        if len(self._buffer) >= FLUSH_EVERY:
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        if self.postgres:
            raw = await self.conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None  # None only once the connection is closed
            async with driver.cursor() as cursor:
                async with cursor.copy(f"COPY {T} ({', '.join(STAGED)}) FROM STDIN") as copy:
                    for values in rows:
                        await copy.write_row(values)
        else:
            params = [dict(zip(STAGED, values, strict=True)) for values in rows]
            await self.conn.execute(STAGING.insert(), params)

    async def merge(
        self, now: datetime, cutoff: datetime, source: str, list_id: int | None, want_new: bool
    ) -> Merged:
        await self.flush()
        pg = self.postgres
        run = self._run
        if pg:
            await run(f"ANALYZE {T}")  # temporary tables have no statistics otherwise: bad join plans
            await run(f"DELETE FROM {T} a USING {T} b WHERE a.key = b.key AND a.line < b.line")
        else:
            await run(f"CREATE INDEX temp.{T}_key ON {T} (key, line)")
            await run(
                f"DELETE FROM {T} WHERE EXISTS "
                f"(SELECT 1 FROM {T} b WHERE b.key = {T}.key AND b.line > {T}.line)"
            )
        # Which existing contact each row updates: by external id, else by email (the oldest).
        await run(
            f"UPDATE {T} SET contact_id = c.id, target = c.external_id FROM contacts c "
            f"WHERE {T}.external_id IS NOT NULL AND c.external_id = {T}.external_id"
        )
        await run(
            f"UPDATE {T} SET (contact_id, target) = (SELECT c.id, c.external_id FROM contacts c "
            f"WHERE c.email = {T}.email ORDER BY c.id LIMIT 1) WHERE {T}.external_id IS NULL"
        )
        await run(f"UPDATE {T} SET is_new = (contact_id IS NULL), target = COALESCE(target, new_id)")
        # A row by external id and a row by email may land on the same contact: the last one wins.
        if pg:
            await run(f"DELETE FROM {T} a USING {T} b WHERE a.target = b.target AND a.line < b.line")
        else:
            await run(f"CREATE INDEX temp.{T}_target ON {T} (target, line)")
            await run(
                f"DELETE FROM {T} WHERE EXISTS "
                f"(SELECT 1 FROM {T} b WHERE b.target = {T}.target AND b.line > {T}.line)"
            )
        await run(_upsert(pg), now=now)
        await run(
            f"UPDATE {T} SET contact_id = c.id FROM contacts c "
            f"WHERE {T}.contact_id IS NULL AND c.external_id = {T}.target"
        )
        for (channel, purpose), name in CONSENT_COLUMNS.items():
            if (channel, purpose) not in self.columns.consents:
                continue
            await run(
                "INSERT INTO consents (contact_id, channel, purpose, granted, source, updated_at) "
                f"SELECT contact_id, :channel, :purpose, {name}, :source, :now FROM {T} "
                f"WHERE {name} IS NOT NULL ON CONFLICT (contact_id, channel, purpose) DO UPDATE SET "
                "granted = EXCLUDED.granted, source = EXCLUDED.source, updated_at = EXCLUDED.updated_at",
                channel=channel,
                purpose=purpose,
                source=source,
                now=now,
            )
        if list_id is not None:
            await run(
                "INSERT INTO list_members (list_id, contact_id, added_at) "
                f"SELECT :list_id, contact_id, :now FROM {T} WHERE true "
                "ON CONFLICT (list_id, contact_id) DO NOTHING",
                list_id=list_id,
                now=now,
            )
        counts = (
            await run(
                f"SELECT COALESCE(SUM(CASE WHEN {T}.is_new THEN 1 ELSE 0 END), 0), COUNT(*), "
                "COALESCE(SUM(CASE WHEN c.last_purchase_at < :cutoff THEN 1 ELSE 0 END), 0) "
                f"FROM {T} JOIN contacts c ON c.id = {T}.contact_id",
                cutoff=cutoff,
            )
        ).one()
        new: list[NewContact] = []
        if want_new:
            found = await run(f"SELECT key, target FROM {T} WHERE is_new ORDER BY line")
            new = [NewContact(key=key[2:], external_id=target) for key, target in found]
        if not pg:
            await run(f"DROP TABLE temp.{T}")
        accepted, total, excluded = (int(v) for v in counts)
        return Merged(accepted=accepted, updated=total - accepted, excluded_three_year_rule=excluded, new=new)

    async def _run(self, sql: str, **params: Any) -> Any:
        statement = text(sql)
        typed = [bindparam(k, type_=UTCDateTime()) for k, v in params.items() if isinstance(v, datetime)]
        if typed:
            statement = statement.bindparams(*typed)
        return await self.conn.execute(statement, params)


def _upsert(pg: bool) -> str:
    names = "email, phone, first_name, last_name, locale, time_zone"
    keep = ",\n  ".join(
        f"{n} = COALESCE(EXCLUDED.{n}, contacts.{n})"  # an empty cell changes nothing
        for n in ("email", "phone", "first_name", "last_name", "locale", "time_zone")
    )
    if pg:
        attributes_in = "CAST(attributes AS json)"
        merged = "CAST(CAST(contacts.attributes AS jsonb) || CAST(EXCLUDED.attributes AS jsonb) AS json)"
        latest = "GREATEST(contacts.last_purchase_at, EXCLUDED.last_purchase_at)"
        where = ""
    else:
        attributes_in = "attributes"
        merged = "json_patch(contacts.attributes, EXCLUDED.attributes)"
        latest = (
            "CASE WHEN contacts.last_purchase_at IS NULL OR EXCLUDED.last_purchase_at > "
            "contacts.last_purchase_at THEN EXCLUDED.last_purchase_at ELSE contacts.last_purchase_at END"
        )
        where = " WHERE true"  # SQLite needs it to tell ON CONFLICT from a join
    return (
        f"INSERT INTO contacts (external_id, {names}, attributes, last_purchase_at, email_status, "
        "created_at, updated_at)\n"
        f"SELECT target, {names}, {attributes_in}, last_purchase_at, 'ok', :now, :now FROM {T}{where}\n"
        "ON CONFLICT (external_id) DO UPDATE SET\n"
        # A new address starts clean (C-08), as through the API.
        "  email_status = CASE WHEN EXCLUDED.email IS NOT NULL AND EXCLUDED.email <> "
        "lower(trim(COALESCE(contacts.email, ''))) THEN 'ok' ELSE contacts.email_status END,\n"
        f"  {keep},\n"
        f"  attributes = {merged},\n"
        f"  last_purchase_at = {latest},\n"
        "  updated_at = EXCLUDED.updated_at"
    )
