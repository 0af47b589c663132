"""The ``relance`` command."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from relance.cli.run import (
    CommandError,
    connect,
    open_engine,
    reported,
    run,
    set_debug,
    with_relance,
    with_session,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from typer._click import Command, Context

    from relance.models.journey import JourneyState
    from relance.reports.experiments import ExperimentReport
    from relance.starter.facade import Relance

T = TypeVar("T")

_DEFERRED: dict[str, str] = {}  # command name -> "module:attribute" of its sub-app


class _Group(TyperGroup):
    """The root group: it imports a deferred sub-app only when its command runs, or for ``--help``.

    Importing every sub-app's module (SQLAlchemy, pydantic models, the segments compiler…) took
    seconds on each ``relance …``; this way a command pays only for what it uses.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._imported: set[str] = set()

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        target = _DEFERRED.get(cmd_name)
        if target is not None and cmd_name not in self._imported:
            module, _, attribute = target.partition(":")
            sub_app = getattr(importlib.import_module(module), attribute)
            # Built as add_typer would have, with the root's settings.
            holder = typer.Typer(
                add_completion=False,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
            holder.add_typer(sub_app, name=cmd_name)
            group = typer.main.get_command(holder)
            assert isinstance(group, TyperGroup)
            self.commands[cmd_name] = group.commands[cmd_name]
            self._imported.add(cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    help="relance: customer journeys (referrals, reminders, rewards) on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_Group,
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, print the traceback too (or set RELANCE_DEBUG=1).")
    ] = False,
) -> None:
    set_debug(debug)  # read by relance.cli.run when a command fails


def add_deferred_typer(name: str, target: str) -> None:
    """``app.add_typer`` for the sub-app at ``target`` ("module:attribute"), imported only when used.

    Prefer it to ``app.add_typer``: a sub-app imported here is imported by every ``relance …``.
    """
    _DEFERRED[name] = target
    app.add_typer(typer.Typer(), name=name)  # a stand-in: keeps the command's place and name


add_deferred_typer("scenarios", "relance.cli.scenarios:scenarios_app")
add_deferred_typer("templates", "relance.cli.templates:templates_app")
add_deferred_typer("lists", "relance.cli.lists:lists_app")
add_deferred_typer("contacts", "relance.cli.contacts:contacts_app")
add_deferred_typer("segments", "relance.cli.segments:segments_app")
add_deferred_typer("sends", "relance.cli.broadcasts:sends_app")
add_deferred_typer("referrals", "relance.cli.referrals:referrals_app")
add_deferred_typer("promo-codes", "relance.cli.promo_codes:promo_codes_app")
add_deferred_typer("reports", "relance.cli.reports:reports_app")
db_app = typer.Typer(help="The application database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
journeys_app = typer.Typer(help="Inspect and cancel running journeys.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Keys that encrypt Temporal payloads (RELANCE_PAYLOAD_KEYS).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(key_id: Annotated[str, typer.Argument(help="A name for the key, e.g. 2026-11.")] = "k1") -> None:
    """Print a fresh AES-256 key as id:base64. Put it first in RELANCE_PAYLOAD_KEYS to rotate."""
    from relance.core.codec import CodecError, new_key  # cryptography, temporalio: not loaded for --help

    try:
        print(new_key(key_id))
    except CodecError as error:
        err.print(f"[red]error[/red]: {error}")
        raise typer.Exit(2) from None


app.add_typer(journeys_app, name="journeys")

err = Console(stderr=True, soft_wrap=True)  # never wrap file:line messages


def _logging(default_format: str = "json") -> None:
    # structlog and pydantic-settings: loaded by the commands that log, not by every `relance …`.
    from relance.core.logs import configure_logging
    from relance.core.settings import get_settings

    with reported():  # a wrong RELANCE_* value: one line naming it
        settings = get_settings()
    fmt = settings.log_format if "RELANCE_LOG_FORMAT" in os.environ else default_format
    configure_logging(settings.log_level, fmt)


@app.command()
def dev(
    demo: Annotated[
        bool, typer.Option(help="Load examples/demo and fire a few purchases with short delays.")
    ] = False,
) -> None:
    """Run the embedded stack: Temporal dev server + UI, SQLite, worker and HTTP API."""
    # Imported when the command runs (here and below): temporalio and SQLAlchemy slow `relance --help`.
    from relance.core.settings import get_settings
    from relance.devstack.stack import run_dev

    _logging("console")
    asyncio.run(run_dev(get_settings(), demo=demo))


@app.command()
def worker() -> None:
    """Run a worker against RELANCE_TEMPORAL_ADDRESS (production)."""
    # Imported when the command runs: the worker pulls in temporalio, SQLAlchemy and httpx.
    from relance.channels.router import build_channel
    from relance.core.db import session_factory
    from relance.core.settings import get_settings
    from relance.worker import build_worker

    _logging()
    with reported():  # bad settings: one line, not a traceback
        settings = get_settings()

    async def main() -> None:
        client = await connect(settings)
        engine = open_engine(settings)
        try:
            await build_worker(client, settings, session_factory(engine), build_channel(settings)).run()
        finally:
            await engine.dispose()

    run(main)


@app.command()
def api() -> None:
    """Serve the HTTP API (production)."""
    # Imported when the command runs: the API pulls in FastAPI, temporalio and SQLAlchemy.
    import uvicorn

    from relance.api.app import create_app
    from relance.core.settings import get_settings

    _logging()
    with reported():  # bad settings: one line, not a traceback
        settings = get_settings()
        served = create_app(settings)
    uvicorn.run(served, host=settings.api_host, port=settings.api_port)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the Alembic migrations to RELANCE_DATABASE_URL."""
    # Imported when the command runs: SQLAlchemy and Alembic slow `relance --help`.
    from sqlalchemy.engine import make_url

    from relance.core.migrate import upgrade
    from relance.core.settings import get_settings

    with reported():
        url = get_settings().resolved_database_url()
        upgrade(url, revision)
    shown = make_url(url).render_as_string(hide_password=True)  # logs must not carry the password
    err.print(f"database at {revision}: {shown}")


@app.command()
def simulate(
    scenarios: Annotated[Path, typer.Option(help="Directory of scenario YAML files.")],
    events: Annotated[Path, typer.Option(help="JSON lines: one POST /v1/events body per line.")],
    contacts: Annotated[Path | None, typer.Option(help="CSV of contacts (external_id, email, …).")] = None,
    templates: Annotated[Path | None, typer.Option(help="Templates directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Run scenarios on Temporal's time-skipping server and print the timeline of messages."""
    # Imported when the command runs: the simulation pulls in temporalio and SQLAlchemy.
    from relance.core.logs import configure_logging
    from relance.core.settings import get_settings
    from relance.scenarios.loader import load_scenarios
    from relance.simulation.run import Simulation, read_contacts, read_events, timeline_json_lines

    configure_logging("warning", "json")
    for path in (scenarios, events, contacts, templates):
        if path is not None and not path.exists():
            err.print(f"{path}: no such file or directory")
            raise typer.Exit(2)
    with reported():
        scenario_set = load_scenarios(scenarios)
        simulation = Simulation(
            scenarios=scenario_set,
            templates_dir=templates or get_settings().templates_dir,
            events=read_events(events),
            contacts=read_contacts(contacts) if contacts else [],
        )
    entries = run(simulation.run)
    if as_json:
        sys.stdout.write(timeline_json_lines(entries))
        return
    table = Table("at", "contact", "scenario/journey", "message", "channel", "status", "reason")
    for e in entries:
        table.add_row(
            e.at,
            e.contact,
            f"{e.scenario}/{e.journey}",
            e.message,
            e.channel,
            e.status,
            e.reason or "",
        )
    Console().print(table)


@journeys_app.command("show")
def journeys_show(workflow_id: str) -> None:
    """Print a journey's state (current step, next send, steps done) as JSON."""

    async def work(relance: Relance) -> JourneyState:
        return await _or_not_found(relance.journey_state(workflow_id), f"no journey with id '{workflow_id}'")

    state = with_relance(work)
    print(json.dumps(state.model_dump(mode="json"), indent=2))


@journeys_app.command("cancel")
def journeys_cancel(
    workflow_id: str, reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")]
) -> None:
    """Cancel a running journey; its remaining messages are recorded as skipped."""

    async def work(relance: Relance) -> None:
        await _or_not_found(
            relance.cancel_journey(workflow_id, reason), f"no running journey with id '{workflow_id}'"
        )

    with_relance(work)
    err.print(f"cancel sent to {workflow_id}")


async def _or_not_found(call: Awaitable[T], message: str) -> T:
    """Temporal's NOT_FOUND (no such workflow, or it has finished) as ``message``, like the API's 404."""
    # Imported when a journeys command runs: temporalio takes long to import.
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return await call
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(message) from error
        raise


experiments_app = typer.Typer(help="A/B variants and holdout groups of messages.", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")


@experiments_app.command("show")
def experiments_show(
    scenario: str,
    journey: str,
    message: str,
    window_days: Annotated[int, typer.Option(help="A purchase this many days after counts.", min=1)] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Each group of a message's test: contacts, sends, clicks, conversions, lift and p-value."""
    # Imported when the command runs: the report pulls in SQLAlchemy.
    from relance.reports.experiments import experiment_report

    async def work(session: AsyncSession) -> ExperimentReport:
        return await experiment_report(session, scenario, journey, message, timedelta(days=window_days))

    report = with_session(work)
    if not report.groups:
        err.print(
            f"no A/B group recorded for {scenario}/{journey}/{message}: does it have variants or a holdout?"
        )
        raise typer.Exit(1)
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    table = Table(
        title=f"{scenario}/{journey}/{message}: control '{report.control}', {window_days}-day window"
    )
    for column in ("group", "contacts", "sent", "clicked", "converted", "rate", "lift", "p-value", ""):
        table.add_column(column, justify="left" if column in ("group", "") else "right")
    for g in report.groups:
        table.add_row(
            g.group, str(g.contacts), str(g.sent), str(g.clicked), str(g.converted),
            "–" if g.conversion_rate is None else f"{g.conversion_rate:.1%}",
            "–" if g.lift is None else f"{g.lift:+.1%}",
            "–" if g.p_value is None else f"{g.p_value:.3f}",
            "significant" if g.significant else "",
        )  # fmt: skip
    Console().print(table)


def main() -> None:
    """The ``relance`` command. A process that used the Temporal client leaves without the
    interpreter's finalisation: the SDK's core threads may still call into Python then and abort
    the process (``PyGILState_Release``), turning a finished command's exit code into 134."""
    try:
        app(prog_name="relance")
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    if "temporalio.bridge.runtime" not in sys.modules:
        raise SystemExit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
