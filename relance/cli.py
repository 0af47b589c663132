"""The ``relance`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from relance.config import get_settings
from relance.contacts_cli import contacts_app
from relance.lists_cli import lists_app
from relance.logs import configure_logging
from relance.referrals_cli import referrals_app
from relance.scenarios.cli import scenarios_app
from relance.segments.cli import segments_app
from relance.sends_cli import sends_app
from relance.templates_cli import templates_app

app = typer.Typer(
    help="relance: customer journeys (referrals, reminders, rewards) on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(templates_app, name="templates")
app.add_typer(lists_app, name="lists")
app.add_typer(contacts_app, name="contacts")
app.add_typer(segments_app, name="segments")
app.add_typer(sends_app, name="sends")
app.add_typer(referrals_app, name="referrals")
db_app = typer.Typer(help="The application database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
journeys_app = typer.Typer(help="Inspect and cancel running journeys.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")

err = Console(stderr=True, soft_wrap=True)  # never wrap file:line messages


def _logging(default_format: str = "json") -> None:
    settings = get_settings()
    fmt = settings.log_format if "RELANCE_LOG_FORMAT" in __import__("os").environ else default_format
    configure_logging(settings.log_level, fmt)


@app.command()
def dev(
    demo: Annotated[
        bool, typer.Option(help="Load examples/demo and fire a few purchases with short delays.")
    ] = False,
) -> None:
    """Run the embedded stack: Temporal dev server + UI, SQLite, worker and HTTP API."""
    from relance.devstack import run_dev

    _logging("console")
    asyncio.run(run_dev(get_settings(), demo=demo))


@app.command()
def worker() -> None:
    """Run a worker against RELANCE_TEMPORAL_ADDRESS (production)."""
    from relance.channels import build_channel
    from relance.db import create_engine, session_factory
    from relance.starter.client import connect_temporal
    from relance.worker import build_worker

    _logging()
    settings = get_settings()

    async def main() -> None:
        client = await connect_temporal(settings)
        engine = create_engine(settings.resolved_database_url())
        try:
            await build_worker(client, settings, session_factory(engine), build_channel(settings)).run()
        finally:
            await engine.dispose()

    asyncio.run(main())


@app.command()
def api() -> None:
    """Serve the HTTP API (production)."""
    import uvicorn

    from relance.api.app import create_app

    _logging()
    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the Alembic migrations to RELANCE_DATABASE_URL."""
    from sqlalchemy.engine import make_url

    from relance.migrate import upgrade

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
    from relance.scenarios import ScenarioError, load_scenarios
    from relance.simulate import (
        InputError,
        Simulation,
        read_contacts,
        read_events,
        timeline_json_lines,
    )

    configure_logging("warning", "json")
    for path in (scenarios, events, contacts, templates):
        if path is not None and not path.exists():
            err.print(f"{path}: no such file or directory")
            raise typer.Exit(2)
    try:
        scenario_set = load_scenarios(scenarios)
        simulation = Simulation(
            scenarios=scenario_set,
            templates_dir=templates or get_settings().templates_dir,
            events=read_events(events),
            contacts=read_contacts(contacts) if contacts else [],
        )
        entries = asyncio.run(simulation.run())
    except ScenarioError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    except InputError as error:
        err.print("\n".join(error.problems), markup=False)
        raise typer.Exit(1) from None
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

    async def main() -> None:
        from relance.starter import Relance

        async with Relance.from_settings() as relance:
            state = await relance.journey_state(workflow_id)
            print(json.dumps(state.model_dump(mode="json"), indent=2))

    asyncio.run(main())


@journeys_app.command("cancel")
def journeys_cancel(
    workflow_id: str, reason: Annotated[str, typer.Option(help="Why (kept in the ledger).")]
) -> None:
    """Cancel a running journey; its remaining messages are recorded as skipped."""

    async def main() -> None:
        from relance.starter import Relance

        async with Relance.from_settings() as relance:
            await relance.cancel_journey(workflow_id, reason)
            err.print(f"cancel sent to {workflow_id}")

    asyncio.run(main())


if __name__ == "__main__":
    app()
