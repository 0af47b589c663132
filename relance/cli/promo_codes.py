"""``relance promo-codes``: load the codes rewards are taken from, see what is left (R-12)."""

from __future__ import annotations

import csv
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from relance.cli.run import Errors, with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from relance.promo_codes.service import LoadReport, PoolStats

promo_codes_app = typer.Typer(
    help="Promo-code pools for rewards: load codes, see how many are left.", no_args_is_help=True
)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


class FileProblem(ValueError):
    pass


def read_codes(path: Path) -> tuple[list[str], list[int]]:
    """The codes of ``path`` and their line numbers: one code per line, or a CSV with a ``code`` column."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets start CSV files with a BOM
    except UnicodeDecodeError as error:
        raise FileProblem(f"{path}: not UTF-8 text ({error.reason}): save it as UTF-8 and retry") from None
    except OSError as error:
        raise FileProblem(f"{path}: cannot be read: {error.strerror}") from None
    rows = text.splitlines()
    first = next((n for n, row in enumerate(rows) if row.strip()), None)
    if first is None:
        raise FileProblem(f"{path}: no codes in the file: put one code per line")
    header = rows[first]
    delimiter = max(",;\t", key=header.count)
    columns = [c.strip().strip('"').lower() for c in header.split(delimiter)]
    codes: list[str] = []
    lines: list[int] = []
    if "code" in columns:
        reader = csv.DictReader(rows[first:], delimiter=delimiter)
        assert reader.fieldnames is not None
        # DictReader keeps the header's spelling: find the column whatever its case.
        name = next(f for f in reader.fieldnames if f.strip().strip('"').lower() == "code")
        for record in reader:
            value = (record.get(name) or "").strip()
            if value or any((v or "").strip() for v in record.values() if isinstance(v, str)):
                codes.append(value)
                lines.append(first + reader.line_num)
        if not codes:
            raise FileProblem(f"{path}: the 'code' column is empty: put one code per row under it")
        return codes, lines
    for number, row in enumerate(rows, start=1):
        if row.strip():
            codes.append(row.strip())
            lines.append(number)
    return codes, lines


def _run(work: Callable[[AsyncSession], Awaitable[T]], handled: Errors = ()) -> T:
    """One transaction: all the codes are loaded, or, on an error, none."""
    return with_session(work, transaction=True, handled=handled)


def _fail(as_json: bool, message: str, details: list[dict[str, object]] | None = None) -> NoReturn:
    if as_json:
        print(json.dumps({"error": message, "details": details or []}, indent=2))
    else:
        err.print(f"[red]error[/red]: {escape(message)}")
    raise typer.Exit(1)


@promo_codes_app.command("load")
def load(
    pool: Annotated[str, typer.Argument(help="The pool's name, e.g. referral-10.")],
    file: Annotated[
        Path,
        typer.Argument(
            help="One code per line, or a CSV file with a 'code' column.", exists=True, dir_okay=False
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add the file's codes to POOL; codes already in it are skipped. A bad line loads nothing."""
    # Imported when the command runs: the service pulls in SQLAlchemy, slow for ``relance --help``.
    from relance.promo_codes.service import BadCodes, PromoCodeError, load_pool

    try:
        codes, lines = read_codes(file)
        # Refusals are printed below, as JSON with --json: the helper leaves them to this command.
        report: LoadReport = _run(
            lambda session: load_pool(session, pool, codes, lines=lines), handled=(PromoCodeError,)
        )
    except FileProblem as problem:
        _fail(as_json, str(problem))
    except BadCodes as bad:
        for bad_line in bad.problems if not as_json else []:
            err.print(
                f"{escape(str(file))}:{bad_line.line}: '{escape(bad_line.code)}': {escape(bad_line.message)}"
            )
        _fail(
            as_json,
            f"{bad.message}: fix the line(s) above in {file} and run the command again",
            [{"file": str(file), **bad_line.model_dump()} for bad_line in bad.problems],
        )
    except PromoCodeError as error:
        _fail(as_json, f"{error.field}: {error.message}")
    if as_json:
        print(json.dumps(report.model_dump(), indent=2))
    else:
        print(
            f"pool '{report.pool}': {report.added} code(s) added, {report.duplicates} already there "
            f"(skipped); {report.available} available"
        )


@promo_codes_app.command("stats")
def stats(
    pool: str, as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False
) -> None:
    """How many codes of POOL are still available and how many were given."""
    # Imported when the command runs: the service pulls in SQLAlchemy, slow for ``relance --help``.
    from relance.promo_codes.service import pool_stats

    counts: PoolStats = _run(lambda session: pool_stats(session, pool))
    if as_json:
        print(json.dumps(counts.model_dump(), indent=2))
    elif counts.available + counts.assigned == 0:
        _fail(False, f"no codes were ever loaded into pool '{pool}': `relance promo-codes load {pool} FILE`")
    else:
        print(f"pool '{pool}': {counts.available} available, {counts.assigned} given")
