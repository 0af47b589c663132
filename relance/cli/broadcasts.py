"""``relance sends``: bulk sends from the command line (same rules as ``/v1/sends``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from relance.cli.run import fail, with_relance

if TYPE_CHECKING:
    from relance.broadcasts.service import Broadcasts
    from relance.starter.facade import Relance

sends_app = typer.Typer(
    help="Bulk sends: send to a list or segment, list scheduled sends, move, cancel, test.",
    no_args_is_help=True,
)
err = Console(stderr=True, soft_wrap=True)
# ChannelMode's values, written out: relance.models.broadcast loads temporalio, and `relance --help`
# imports this module (tests/test_cli_startup.py checks that the two agree).
Channels = Literal["email", "sms", "both", "preferred"]


def _run(work: Callable[[Broadcasts], Awaitable[Any]]) -> Any:
    # Imported when a command runs: the service pulls in temporalio and SQLAlchemy.
    from relance.broadcasts.service import Broadcasts

    async def main(relance: Relance) -> Any:
        return await work(Broadcasts(relance.client, relance.ingestor.sessions, relance.settings))

    return with_relance(main)


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a date: write e.g. 2026-12-01T09:00+01:00") from None
    if value.tzinfo is None:
        raise typer.BadParameter("give the time zone, e.g. 2026-12-01T09:00+01:00")
    return value


@sends_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="What the marketers call it.")],
    template: Annotated[str, typer.Option(help="Template name, e.g. news/spring.")],
    list_name: Annotated[str | None, typer.Option("--list", help="Send to this static list.")] = None,
    builtin: Annotated[str | None, typer.Option(help="Send to a default filter, e.g. all.")] = None,
    channels: Annotated[Channels, typer.Option(help="email, sms, both or preferred.")] = "email",
    at: Annotated[str | None, typer.Option(help="When (ISO 8601 with zone); default: in 15 minutes.")] = None,
) -> None:
    """Send a marketing message to a list: it goes after the safety delay, or at --at."""
    from relance.models.broadcast import BroadcastIn  # temporalio: not loaded for --help

    try:
        data = BroadcastIn.model_validate(
            {
                "name": name,
                "template": template,
                "channels": channels,
                "audience": {"list": list_name, "builtin": builtin},
                "at": _when(at) if at else None,
            }
        )
    except ValidationError as error:
        fail(*(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors()), code=2)
    state = _run(lambda b: b.schedule(data))
    print(json.dumps(state.model_dump(mode="json"), indent=2))
    err.print(
        f"cancel or move it until {state.send_at.isoformat()}: relance sends cancel {state.broadcast_id}"
    )


@sends_app.command("list")
def list_sends(all: Annotated[bool, typer.Option("--all", help="Finished ones too.")] = False) -> None:
    """Scheduled and running sends."""
    states = _run(lambda b: b.list(include_done=all))
    table = Table("id", "status", "send at", "sent", "suppressed")
    for s in states:
        report = s.report
        table.add_row(
            s.broadcast_id,
            s.status,
            s.send_at.isoformat(timespec="minutes"),
            str(report.sent) if report else "",
            str(sum(report.suppressed.values())) if report else "",
        )
    Console().print(table)


@sends_app.command("show")
def show(broadcast_id: str) -> None:
    """A send's state, progress and report, as JSON."""
    state = _run(lambda b: b.state(broadcast_id))
    print(json.dumps(state.model_dump(mode="json"), indent=2))


@sends_app.command("reschedule")
def reschedule(
    broadcast_id: str, at: Annotated[str, typer.Option(help="New time, ISO 8601 with zone.")]
) -> None:
    """Move a send that has not started."""
    when = _when(at)
    state = _run(lambda b: b.reschedule(broadcast_id, when))
    print(json.dumps(state.model_dump(mode="json"), indent=2))


@sends_app.command("cancel")
def cancel(broadcast_id: str) -> None:
    """Cancel a send that has not started."""
    state = _run(lambda b: b.cancel(broadcast_id))
    print(json.dumps(state.model_dump(mode="json"), indent=2))


@sends_app.command("test")
def test(
    template: Annotated[str, typer.Option(help="Template name.")],
    to: Annotated[str, typer.Option(help="Your own address or phone.")],
    channels: Annotated[Channels, typer.Option(help="email, sms or both.")] = "email",
) -> None:
    """Send the message to yourself first, with sample data; nothing is recorded."""
    from relance.models.broadcast import ChannelMode  # temporalio: not loaded for --help

    mode = ChannelMode(channels)
    for line in _run(lambda b: b.test_send(template, mode, to)):
        err.print(f"sent by {line}")
