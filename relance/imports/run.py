"""An import from start to end: read, check, stage, merge, commit (once, or per batch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from relance.contacts.consent import THREE_YEARS
from relance.imports.columns import Columns, read_header
from relance.imports.cursor import Cursor, cursor_path
from relance.imports.errors import ImportFileError
from relance.imports.options import SEPARATORS, ImportOptions
from relance.imports.reader import (
    CsvReader,
    Record,
    check_encoding,
    check_separator,
    detect_separator,
    first_line,
    head_digest,
    scan,
)
from relance.imports.report import ImportReport, Rejection
from relance.imports.rows import ContactRow, Rejected, RowChecker
from relance.imports.store import Merged, NewContact, Stage
from relance.lists import service as lists
from relance.models.list import ListIn

Progress = Callable[[int], None]  # bytes read so far
Committed = Callable[[list[NewContact]], Awaitable[None]]

__all__ = ["NewContact", "Prepared", "import_csv", "prepare", "preview_rows"]


@dataclass
class Prepared:
    """A readable file with a valid header: how to read its rows."""

    stream: IO[bytes]
    size: int
    encoding: str
    separator: str
    columns: Columns
    header_end: int  # byte offset after the header
    header_lines: int
    sha256: str | None


def prepare(stream: IO[bytes], options: ImportOptions, digest: bool = False) -> Prepared:
    """Encoding, separator and header: raise ImportFileError when the file cannot be imported at all."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    if size == 0:
        raise ImportFileError("the file is empty: it needs a header line (email or external_id, …) and rows")
    encoding = check_encoding(options.encoding) if options.encoding else None
    scanned = scan(stream, encoding, digest)
    separator = (
        check_separator(options.separator)
        if options.separator
        else detect_separator(first_line(stream, scanned.encoding))
    )
    reader = CsvReader(stream, scanned.encoding, separator)
    header: Record | None = None
    for record in reader:
        if any(field.strip() for field in record.fields):
            header = record
            break
    if header is None:
        raise ImportFileError("the file has no header line: the first line names the columns (email, …)")
    columns = read_header(header.fields)
    return Prepared(
        stream=stream,
        size=size,
        encoding=scanned.encoding,
        separator=separator,
        columns=columns,
        header_end=header.end,
        header_lines=header.next_line,
        sha256=scanned.sha256,
    )


def _rows(
    prepared: Prepared, checker: RowChecker, offset: int, lines: int
) -> Iterator[tuple[Record, ContactRow | Rejection]]:
    """Each data record, checked; blank lines skipped; a wrong field count stops the file."""
    width = len(prepared.columns.names)
    for record in CsvReader(prepared.stream, prepared.encoding, prepared.separator, offset, lines):
        fields = record.fields
        if len(fields) != width:
            if not any(f.strip() for f in fields):
                continue  # a blank line
            if len(fields) > width and not any(f.strip() for f in fields[width:]):
                fields = fields[:width]  # trailing separators, as spreadsheets write them
            else:
                name = SEPARATORS[prepared.separator]
                raise ImportFileError(
                    f"{len(fields)} fields where the header has {width} (separator: {name}): "
                    "a separator too many or too few, mixed separators, or a quote opened and not "
                    "closed; fix this line",
                    line=record.line,
                )
        try:
            yield record, checker.check(record.line, fields)
        except Rejected as rejected:
            if not any(f.strip() for f in fields):
                continue  # separators only (;;;;): a blank line too
            yield record, Rejection(record.line, str(rejected))


def preview_rows(
    stream: IO[bytes], options: ImportOptions, limit: int
) -> tuple[Prepared, list[ContactRow | Rejection]]:
    """The first rows as they would be imported; nothing is written."""
    prepared = prepare(stream, options)
    checker = RowChecker(prepared.columns, options.default_region, options.default_time_zone)
    shown: list[ContactRow | Rejection] = []
    for _, row in _rows(prepared, checker, prepared.header_end, prepared.header_lines):
        shown.append(row)
        if len(shown) >= limit:
            break
    return prepared, shown


async def import_csv(
    engine: AsyncEngine,
    prepared: Prepared,
    options: ImportOptions,
    *,
    file: Path | None = None,
    progress: Progress | None = None,
    committed: Committed | None = None,
) -> ImportReport:
    """Import the rows of a prepared file; see docs/import.md for the rules.

    All or nothing: a rejected row refuses the whole file unless ``skip_invalid``.
    With ``batch_size`` (needs ``file``, for the cursor), each batch is its own transaction.
    ``committed`` hears of the new contacts after each commit (C-02: default scenario).
    """
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    checker = RowChecker(prepared.columns, options.default_region, options.default_time_zone)
    report = ImportReport()
    if options.batch_size is None:
        if options.resume:
            raise ImportFileError("--resume continues a batched import: give --batch-size too")
        await _single(sessions, prepared, checker, options, report, progress, committed)
        return report
    if file is None:
        raise ImportFileError("batches need a file to keep their cursor in: import from a file")
    await _batched(sessions, prepared, checker, options, report, file, progress, committed)
    return report


async def _single(
    sessions: async_sessionmaker[AsyncSession],
    prepared: Prepared,
    checker: RowChecker,
    options: ImportOptions,
    report: ImportReport,
    progress: Progress | None,
    committed: Committed | None,
) -> None:
    """One transaction for the whole file: staged as read, merged at the end, or rolled back."""
    now = datetime.now(UTC)
    try:
        async with sessions() as session, session.begin():
            stage = Stage(await session.connection(), prepared.columns)
            await stage.open()
            refused = False
            for count, (record, row) in enumerate(
                _rows(prepared, checker, prepared.header_end, prepared.header_lines), 1
            ):
                if isinstance(row, Rejection):
                    report.reject(row.line, row.reason)
                    refused = not options.skip_invalid
                elif not refused:
                    await stage.add(row)
                if progress is not None and count % 2000 == 0:
                    progress(record.end)
            if progress is not None:
                progress(prepared.size)
            if refused or stage.rows == 0:
                raise _Refused  # all or nothing: not one row is written
            list_id = await _list_id(session, options.list_name)
            merged = await stage.merge(now, now - THREE_YEARS, options.source, list_id, committed is not None)
    except _Refused:
        return
    except (DBAPIError, psycopg.Error) as error:
        raise _refused_by_database(error, None) from error
    report.add(merged.accepted, merged.updated, merged.excluded_three_year_rule)
    report.written = True
    if committed is not None and merged.new:
        await committed(merged.new)


class _Refused(Exception):
    """Leaves the transaction, rolling it back."""


async def _batched(
    sessions: async_sessionmaker[AsyncSession],
    prepared: Prepared,
    checker: RowChecker,
    options: ImportOptions,
    report: ImportReport,
    file: Path,
    progress: Progress | None,
    committed: Committed | None,
) -> None:
    """A transaction per batch and a cursor after each, so that an interruption can be resumed."""
    assert options.batch_size is not None
    path = cursor_path(file)
    head = head_digest(prepared.stream)
    if options.resume:
        cursor = Cursor.load(path)
        if cursor.size != prepared.size or cursor.head_sha256 != head:
            raise ImportFileError(
                f"{file} changed since the interrupted import (its size or beginning differ from "
                f"{path}): delete {path.name} and import the file again without --resume"
            )
        if (cursor.encoding, cursor.separator) != (prepared.encoding, prepared.separator):
            raise ImportFileError(
                f"the interrupted import read {file} as {cursor.encoding} with separator "
                f"'{cursor.separator}': resume with the same --encoding and --separator"
            )
        report.add(cursor.accepted, cursor.updated, cursor.excluded_three_year_rule)
        for item in cursor.rejected:
            report.reject(int(item["line"]), str(item["reason"]))
    else:
        if path.exists():
            raise ImportFileError(
                f"an earlier import of {file} stopped part-way ({path.name} is there): add --resume to "
                f"continue it, or delete {path.name} to start again"
            )
        cursor = Cursor(
            size=prepared.size,
            head_sha256=head,
            offset=prepared.header_end,
            line=prepared.header_lines,
            encoding=prepared.encoding,
            separator=prepared.separator,
        )
    if not options.skip_invalid:
        # All or nothing across batches: every row is checked before the first batch is written.
        before = report.rejected_count
        for _, row in _rows(prepared, checker, cursor.offset, cursor.line):
            if isinstance(row, Rejection):
                report.reject(row.line, row.reason)
        if report.rejected_count > before:
            return
    rows = _rows(prepared, checker, cursor.offset, cursor.line)
    done = False
    while not done:
        now = datetime.now(UTC)
        rejected: list[Rejection] = []
        merged: Merged | None = None
        end, lines = cursor.offset, cursor.line
        try:
            async with sessions() as session, session.begin():
                stage = Stage(await session.connection(), prepared.columns)
                await stage.open()
                done = True
                for record, row in rows:
                    end, lines = record.end, record.next_line
                    if isinstance(row, Rejection):
                        rejected.append(row)
                    else:
                        await stage.add(row)
                    if stage.rows >= options.batch_size:
                        done = False
                        break
                if progress is not None:
                    progress(end)
                if stage.rows:
                    list_id = await _list_id(session, options.list_name)
                    merged = await stage.merge(
                        now, now - THREE_YEARS, options.source, list_id, committed is not None
                    )
        except (DBAPIError, psycopg.Error) as error:
            raise _refused_by_database(error, (cursor.line + 1, lines)) from error
        for rejection in rejected:
            report.reject(rejection.line, rejection.reason)
        if merged is not None:
            report.add(merged.accepted, merged.updated, merged.excluded_three_year_rule)
            report.written = True
            if committed is not None and merged.new:
                await committed(merged.new)
        cursor.offset, cursor.line = end, lines
        cursor.accepted, cursor.updated = report.accepted, report.updated
        cursor.excluded_three_year_rule = report.excluded_three_year_rule
        cursor.rejected = [{"line": r.line, "reason": r.reason} for r in report.rejected]
        cursor.save(path)
    path.unlink(missing_ok=True)


def _refused_by_database(error: Exception, lines: tuple[int, int] | None) -> ImportFileError:
    cause = (str(getattr(error, "orig", None) or error).strip().splitlines() or ["unknown error"])[0]
    if lines is None:
        return ImportFileError(f"the database refused the import: {cause}. Nothing was imported.")
    return ImportFileError(
        f"the database refused the batch of lines {lines[0]}-{lines[1]}: {cause}. The batches before "
        "it are imported; fix the problem and run the same command again with --resume."
    )


async def _list_id(session: AsyncSession, name: str | None) -> int | None:
    if name is None:
        return None
    try:
        row = await lists.get(session, name)
    except lists.Refused:
        row = await lists.create(session, ListIn(name=name))
    return row.id
