"""How a command runs its async body, and how it says what went wrong.

``with_session`` gives the body a session on ``RELANCE_DATABASE_URL`` (optionally one
transaction), ``with_relance`` the ``Relance`` facade (Temporal client and database), ``run`` runs
any coroutine and ``reported`` guards a block of plain code. Each closes what it opened, and turns
an expected error (a refusal, a bad file, Temporal or the database unreachable…) into
``error: <field>: <message>`` on stderr and exit 1, or 2 for a usage error; any other error into
one line pointing at ``relance --debug``, which prints the traceback as well.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
    from temporalio.client import Client

    from relance.core.settings import Settings
    from relance.starter.facade import Relance

T = TypeVar("T")
Errors = tuple[type[BaseException], ...]
Described = tuple[list[str], int]  # the lines to print and the exit code

DEBUG_ENV = "RELANCE_DEBUG"  # set to 1 for tracebacks where --debug cannot be given
CONNECT_TIMEOUT = 15.0  # seconds: an unroutable Temporal address would otherwise hang the command
USAGE = 2  # exit code of a usage error, as typer's own

err = Console(stderr=True, soft_wrap=True, highlight=False)  # never wrap file:line messages


class _State:
    debug = False


_state = _State()


def set_debug(on: bool) -> None:
    """Called by the root ``--debug`` option on every run, so a previous run's choice never lingers."""
    _state.debug = on


def debug_enabled() -> bool:
    return _state.debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


class CommandError(Exception):
    """A failure the command words itself: each line is printed as ``error: <line>``."""

    def __init__(self, *lines: str, code: int = 1) -> None:
        super().__init__("\n".join(lines))
        self.lines, self.code = list(lines), code


def print_error(*lines: str) -> None:
    """Each line on stderr, as is; a leading ``error:`` is red on a terminal."""
    for line in lines:
        if line.startswith("error: "):
            err.print(f"[red]error[/red]: {escape(line.removeprefix('error: '))}")
        else:
            err.print(escape(line))


def fail(*lines: str, code: int = 1) -> NoReturn:
    """Print ``error: <line>`` for each line and exit with ``code``."""
    print_error(*(f"error: {line}" for line in lines))
    raise typer.Exit(code)


@contextmanager
def reported(*, usage: Errors = (), handled: Errors = ()) -> Iterator[None]:
    """Errors raised in the block become lines on stderr and an exit code (see the module doc).

    ``usage``: errors that exit 2 (a bad argument) rather than 1. ``handled``: errors the caller
    catches itself around the block; they go through untouched.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # typer's own: it prints them and picks the exit code
    except handled:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None  # what a shell reports for Ctrl-C
    except Exception as error:
        _report(error, usage)


def run(body: Callable[[], Awaitable[T]], *, usage: Errors = (), handled: Errors = ()) -> T:
    """``body()`` on a fresh event loop, its errors reported as ``reported`` does."""

    async def main() -> T:
        return await body()

    with reported(usage=usage, handled=handled):
        return asyncio.run(main())
    raise AssertionError("unreachable")  # reported() either returns the value or exits


def with_session(
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    transaction: bool = False,
    usage: Errors = (),
    handled: Errors = (),
) -> T:
    """``work(session)`` on ``RELANCE_DATABASE_URL``; with ``transaction``, in one transaction:
    it all happens or, on an error, nothing does. The engine is disposed of afterwards."""

    async def body() -> T:
        # Imported when a command runs: SQLAlchemy would slow every ``relance --help``.
        from relance.core.db import session_factory

        engine = open_engine(_settings())
        try:
            async with session_factory(engine)() as session:
                if not transaction:
                    return await work(session)
                async with session.begin():
                    return await work(session)
        finally:
            await engine.dispose()

    return run(body, usage=usage, handled=handled)


def with_relance(work: Callable[[Relance], Awaitable[T]], *, usage: Errors = (), handled: Errors = ()) -> T:
    """``work(relance)`` with the facade on the configured Temporal and database, closed afterwards."""

    async def body() -> T:
        # Imported when a command runs: the facade pulls in temporalio and SQLAlchemy.
        from relance.starter.facade import Relance

        settings = _settings()
        client = await connect(settings)
        relance = Relance(client, open_engine(settings), settings)
        try:
            return await work(relance)
        finally:
            await relance.close()

    return run(body, usage=usage, handled=handled)


async def connect(settings: Settings) -> Client:
    """A Temporal client, or a CommandError that says where Temporal was looked for."""
    # Imported when a command runs: temporalio takes long to import.
    from relance.starter.client import connect_temporal

    try:
        return await asyncio.wait_for(connect_temporal(settings), CONNECT_TIMEOUT)
    except (RuntimeError, OSError, TimeoutError) as error:  # what Client.connect raises when refused
        raise CommandError(
            f"temporal: cannot reach Temporal at {settings.temporal_address} ({_reason(error)}): "
            "is it running? RELANCE_TEMPORAL_ADDRESS says where it is"
        ) from error


def _settings() -> Settings:
    from relance.core.settings import get_settings  # pydantic-settings: only when a command runs

    return get_settings()


def open_engine(settings: Settings) -> AsyncEngine:
    """An engine on ``RELANCE_DATABASE_URL``, or a CommandError when the URL cannot be used."""
    # Imported when a command runs: SQLAlchemy would slow every ``relance --help``.
    from sqlalchemy.exc import ArgumentError

    from relance.core.db import create_engine

    try:
        return create_engine(settings.resolved_database_url())
    except ValueError as error:  # an unsupported database; the message names the setting
        raise CommandError(str(error)) from error
    except ArgumentError as error:
        raise CommandError(f"RELANCE_DATABASE_URL: {error}") from error


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    # Client.connect's message ends in a Rust debug dump; its 'message: "…"' is the readable part.
    found = re.search(r'message: "([^"]+)"', text)
    return found.group(1) if found else (text.splitlines()[0] if text else type(error).__name__)


def _report(error: Exception, usage: Errors) -> NoReturn:
    debug = debug_enabled()
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    described = describe(error)
    if described is None:
        hint = "" if debug else " (run with --debug for the traceback)"
        lines, code = [f"error: {_what(error)}{hint}"], 1
    else:
        lines, code = described
        if isinstance(error, usage):
            code = USAGE
    print_error(*lines)
    raise typer.Exit(code) from None


def _what(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def describe(error: BaseException) -> Described | None:
    """The lines and exit code for an expected error; None for an unexpected one."""
    for module, name, words in _KNOWN:
        # Only the modules already imported are looked at: an error whose class was never imported
        # cannot have been raised, and importing temporalio or SQLAlchemy here would cost seconds.
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and isinstance(error, kind):
            return words(error)
    return None


def _field_message(error: Any) -> Described:
    return [f"error: {error.field}: {error.message}"], 1


def _message(error: Any) -> Described:
    return [f"error: {error.message}"], 1


def _text(error: BaseException) -> Described:
    return [f"error: {error}"], 1


def _problems(error: Any) -> Described:
    return [f"error: {problem}" for problem in error.problems], 1


def _segment_problems(error: Any) -> Described:
    lines = [f"error: {problem}" for problem in error.problems]
    return [*lines, f"{len(error.problems)} problem(s): nothing was done"], USAGE


def _period(error: Any) -> Described:
    return [f"error: --{error.field}: {error.message}"], USAGE


def _command(error: Any) -> Described:
    return [f"error: {line}" for line in error.lines], error.code


def _rpc(error: Any) -> Described:
    return [f"error: temporal: Temporal did not accept the call ({error.status.name}: {error.message})"], 1


def _query_failed(error: Any) -> Described:
    return [f"error: temporal: the query failed: {error.message}"], 1


def _database(error: Any) -> Described:
    reason = _reason(error.orig) if error.orig is not None else _reason(error)
    return [
        f"error: database: {reason} (check RELANCE_DATABASE_URL, and that `relance db upgrade` was run)"
    ], 1


def _validation(error: Any) -> Described:
    lines = []
    for problem in error.errors():
        where = ".".join(map(str, problem["loc"]))
        if error.title == "Settings":  # the environment variable the user actually wrote
            where = f"RELANCE_{where.upper()}"
        lines.append(f"error: {where}: {problem['msg'].removeprefix('Value error, ')}")
    return lines, 1


# (module, class, wording), most specific first: IngestError and PeriodError are Refused,
# PoolExhausted a PromoCodeError.
_KNOWN: tuple[tuple[str, str, Callable[[Any], Described]], ...] = (
    (__name__, "CommandError", _command),
    ("relance.reports.months", "PeriodError", _period),
    ("relance.core.errors", "Refused", _field_message),
    ("relance.promo_codes.service", "PromoCodeError", _field_message),
    ("relance.contacts.erasure", "UnknownContact", _message),
    ("relance.imports.errors", "SetupError", _text),
    ("relance.segments.load", "SegmentError", _segment_problems),
    ("relance.scenarios.loader", "ScenarioError", _problems),
    ("relance.simulation.run", "InputError", _problems),
    ("relance.templates.engine", "TemplateError", _text),
    ("temporalio.client", "WorkflowQueryFailedError", _query_failed),
    ("temporalio.service", "RPCError", _rpc),
    ("sqlalchemy.exc", "DBAPIError", _database),
    ("pydantic_core", "ValidationError", _validation),
)
