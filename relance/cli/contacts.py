"""``relance contacts``: import contacts from CSV (C-01, C-02, C-03), erase one (O-06)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from relance.cli.run import CONNECT_TIMEOUT, fail, open_engine, reported, run, with_relance
from relance.imports.columns import expected_list
from relance.imports.errors import ImportFileError, SetupError
from relance.imports.options import ImportOptions
from relance.imports.reader import check_encoding, check_separator
from relance.imports.report import Rejection

if TYPE_CHECKING:
    from relance.contacts.erasure import ErasureReport
    from relance.core.settings import Settings
    from relance.imports.report import ImportReport
    from relance.imports.rows import ContactRow
    from relance.imports.run import Prepared
    from relance.starter.facade import Relance

contacts_app = typer.Typer(help="Contacts: import from CSV, erase one (GDPR).", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)  # never wrap file:line messages
out = Console(soft_wrap=True)
SHOWN_REJECTIONS = 50

CERTIFY_HELP = (
    "Required to import: you certify that these contacts gave the consents the file states "
    "and that you may use this list."
)


@contacts_app.command("import")
def import_contacts(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file to import.")
    ],
    certify: Annotated[bool, typer.Option("--certify", help=CERTIFY_HELP)] = False,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show the first rows as they would be imported; write nothing.")
    ] = False,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Rows shown by --preview.")] = 10,
    separator: Annotated[
        str | None, typer.Option("--separator", help="',' ';' '|' or tab; default: read from the header.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="Default: UTF-8 (with or without BOM), else Latin-1.")
    ] = None,
    default_region: Annotated[
        str, typer.Option("--default-region", help="Country of phone numbers written without +code.")
    ] = "FR",
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import the valid rows even when others are rejected."),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", min=1, help="Commit every N rows and keep a cursor to --resume from."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a batched import that stopped part-way.")
    ] = False,
    list_name: Annotated[
        str | None,
        typer.Option("--list", help="Put the imported contacts in this list (created if missing)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Import contacts from a CSV file: new ones are created, known ones updated (see docs/import.md)."""
    from relance.core.settings import get_settings  # pydantic-settings: not loaded for --help

    try:
        separator = check_separator(separator) if separator else None
        encoding = check_encoding(encoding) if encoding else None
    except ImportFileError as error:
        fail(error.message, code=2)  # a wrong option is a usage error
    with reported():
        settings = get_settings()
        options = ImportOptions(
            separator=separator,
            encoding=encoding,
            default_region=default_region,
            default_time_zone=settings.default_time_zone,
            skip_invalid=skip_invalid,
            batch_size=batch_size,
            resume=resume,
            list_name=list_name,
        )
    try:
        if preview:
            with reported(handled=(ImportFileError,)):
                _preview(file, options, rows, as_json)
            return
        if not certify:
            err.print(
                f"[red]error[/red]: add --certify to import {file}: it certifies that these contacts gave "
                "the consents the file states and that you may use this list. "
                "Try --preview first to check how the file is read."
            )
            raise typer.Exit(2)
        # A file's problems are printed below, with the expected columns; the helper words the rest.
        progress = not as_json
        report = run(lambda: _import(file, options, settings, progress), handled=(ImportFileError,))
    except ImportFileError as error:
        _file_error(file, error)
        raise typer.Exit(1) from None
    refused = bool(report.rejected_count) and not skip_invalid
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        _print_report(file, report, list_name)
    if refused:
        if not as_json:
            err.print(
                f"[red]nothing was imported[/red]: {report.rejected_count} row(s) rejected and the import is "
                "all or nothing. Fix them, or add --skip-invalid to import the valid rows."
            )
        raise typer.Exit(1)


async def _import(file: Path, options: ImportOptions, settings: Settings, progress: bool) -> ImportReport:
    from relance.imports.run import import_csv, prepare  # SQLAlchemy, temporalio: not loaded for --help

    relance = None
    with file.open("rb") as stream:
        prepared = prepare(stream, options, digest=bool(settings.import_event))
        committed = None
        if settings.import_event:
            relance = await _connect(settings)
            from relance.imports.entry import check_ready, entry_sender  # temporalio: not loaded for --help

            await check_ready(relance, settings.import_event)
            assert prepared.sha256 is not None
            committed = entry_sender(relance, settings.import_event, prepared.sha256)
        engine = relance.engine if relance else open_engine(settings)
        try:
            with _progress(prepared, progress and err.is_terminal) as advance:
                return await import_csv(
                    engine, prepared, options, file=file, progress=advance, committed=committed
                )
        finally:
            if relance is not None:
                await relance.close()
            else:
                await engine.dispose()


async def _connect(settings: Settings) -> Relance:
    from relance.starter.facade import Relance  # temporalio, SQLAlchemy: not loaded for --help

    try:
        return await asyncio.wait_for(Relance.connect(settings), timeout=CONNECT_TIMEOUT)
    except (RuntimeError, TimeoutError, OSError) as error:
        raise SetupError(
            f"RELANCE_IMPORT_EVENT is '{settings.import_event}' but Temporal at "
            f"{settings.temporal_address} cannot be reached ({str(error).strip() or type(error).__name__}); "
            "start it, or unset RELANCE_IMPORT_EVENT to import without the default scenario. "
            "Nothing was imported."
        ) from None


@contextmanager
def _progress(prepared: Prepared, shown: bool) -> Iterator[Callable[[int], None] | None]:
    if not shown:
        yield None
        return
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("import", total=prepared.size)
    with bar:
        yield lambda done: bar.update(task, completed=done)


def _file_error(file: Path, error: ImportFileError) -> None:
    where = f"{file}:{error.line}" if error.line is not None else str(file)
    if error.problems:
        err.print(f"[red]error[/red]: {escape(where)}: the header is wrong:", highlight=False)
        for problem in error.problems:
            err.print(f"  - {escape(problem.message)}", highlight=False)
        err.print(f"  Expected columns (any order, case-insensitive): {expected_list()}")
        return
    err.print(f"[red]error[/red]: {escape(where)}: {escape(error.message)}", highlight=False)


def _print_report(file: Path, report: ImportReport, list_name: str | None) -> None:
    if report.written:
        line = f"{file}: {report.accepted} new contact(s), {report.updated} updated"
        if report.rejected_count:
            line += f", {report.rejected_count} row(s) rejected and skipped"
        if list_name:
            line += f"; all in list '{list_name}'"
        out.print(line + ".", markup=False, highlight=False)
    elif not report.rejected_count:
        out.print(f"{file}: no rows to import.", markup=False, highlight=False)
    if report.excluded_three_year_rule:
        out.print(
            f"{report.excluded_three_year_rule} contact(s) last purchased over 3 years ago: imported, but "
            "marketing messages will not reach them (3-year rule).",
            markup=False,
            highlight=False,
        )
    if report.rejected:
        out.print("Rejected rows:")
        for rejection in report.rejected[:SHOWN_REJECTIONS]:
            out.print(f"  line {rejection.line}: {rejection.reason}", markup=False, highlight=False)
        if report.rejected_count > SHOWN_REJECTIONS:
            out.print(f"  … and {report.rejected_count - SHOWN_REJECTIONS} more (--json lists them all)")


def _preview(file: Path, options: ImportOptions, limit: int, as_json: bool) -> None:
    from relance.imports.run import preview_rows  # SQLAlchemy, temporalio: not loaded for --help

    with file.open("rb") as stream:
        prepared, shown = preview_rows(stream, options, limit)
    names = ["line", "external_id", "email", "phone", "first_name", "last_name", "locale", "time_zone"]
    names += ["last_purchase_at", "consents", "attributes"]
    if as_json:
        print(json.dumps([_preview_json(row) for row in shown], ensure_ascii=False))
        return
    sep = {"\t": "tab"}.get(prepared.separator, prepared.separator)
    table = Table(title=f"{file} ({prepared.encoding}, separator {sep}): first {len(shown)} row(s)")
    for name in names:
        table.add_column(name, overflow="fold")
    for row in shown:
        if isinstance(row, Rejection):
            table.add_row(str(row.line), "[red]rejected[/red]")
            continue
        table.add_row(
            str(row.line),
            row.external_id or "",
            row.email or "",
            row.phone or "",
            row.first_name or "",
            row.last_name or "",
            row.locale or "",
            row.time_zone or "",
            row.last_purchase_at.isoformat() if row.last_purchase_at else "",
            ", ".join(f"{c}/{p}: {'yes' if v else 'no'}" for (c, p), v in row.consents.items()),
            ", ".join(f"{k}={v}" for k, v in row.attributes.items()),
        )
    out.print(table)
    for row in shown:
        if isinstance(row, Rejection):
            out.print(f"line {row.line}: rejected: {row.reason}", markup=False, highlight=False)
    out.print("Preview only: nothing was written.")


def _preview_json(row: ContactRow | Rejection) -> dict[str, object]:
    if isinstance(row, Rejection):
        return {"line": row.line, "rejected": row.reason}
    return {
        "line": row.line,
        "external_id": row.external_id,
        "email": row.email,
        "phone": row.phone,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "locale": row.locale,
        "time_zone": row.time_zone,
        "last_purchase_at": row.last_purchase_at.isoformat() if row.last_purchase_at else None,
        "consents": {f"{c}_{p}": v for (c, p), v in row.consents.items()},
        "attributes": row.attributes,
    }


@contacts_app.command("erase")
def erase(
    external_id: Annotated[str, typer.Argument(help="The contact's external id.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (a request number…); shown in the ledger.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Erase a contact (GDPR): cancel their journeys, purge their personal data, keep anonymous counts."""
    if not yes and not typer.confirm(
        f"Erase contact '{external_id}'? Their journeys stop and their personal data is purged for good"
    ):
        err.print("nothing was erased")
        raise typer.Exit(1)

    async def work(relance: Relance) -> ErasureReport:
        return await relance.erase_contact(external_id, reason)

    report = with_relance(work)  # an unknown contact is one line, as every refusal
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), ensure_ascii=False))
        return
    out.print(report.message, markup=False, highlight=False)
    if report.status == "erased":
        out.print(
            f"journeys cancelled: {report.journeys_cancelled}, other workflows stopped: "
            f"{report.workflows_stopped} ({report.workflows_terminated} terminated)",
            markup=False,
            highlight=False,
        )
        for table, count in sorted(report.rows.items()):
            out.print(f"  {table}: {count} row(s) purged", markup=False, highlight=False)
