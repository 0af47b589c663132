"""``relance segments``: count, show and snapshot segments."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from relance.cli.run import reported, with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from relance.models.list import ListOut
    from relance.segments.model import Segment
    from relance.segments.service import Shown

segments_app = typer.Typer(help="Dynamic segments: count, show, snapshot into a list.", no_args_is_help=True)
out = Console(soft_wrap=True)
T = TypeVar("T")

SegmentArg = Annotated[
    str, typer.Argument(help="A segment file (.yaml, .yml, .json) or a default filter (see 'builtins').")
]
AtOption = Annotated[
    datetime | None,
    typer.Option("--at", help="Reference time (UTC unless an offset is given); default: now."),
]


def _segment(spec: str) -> Segment:
    # PyYAML and the segment models: not loaded for --help.
    from relance.segments.builtins import builtin, is_builtin
    from relance.segments.load import load

    path = Path(spec)
    if path.suffix in {".yaml", ".yml", ".json"} or (path.exists() and not is_builtin(spec)):
        return load(path)
    return builtin(spec)


def _now(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _run(spec: str, work: Callable[[AsyncSession, Segment], Awaitable[T]]) -> T:
    """Validate, then one transaction: a snapshot happens whole or not at all.

    A segment's problems (SegmentError) exit 2, a refusal 1: relance.cli.run words both.
    """
    with reported():
        segment = _segment(spec)
    return with_session(lambda session: work(session, segment), transaction=True)


@segments_app.command("count")
def count(segment: SegmentArg, at: AtOption = None) -> None:
    """How many contacts the segment holds now (or at --at)."""
    from relance.segments import service  # SQLAlchemy: not loaded for --help

    async def work(session: AsyncSession, seg: Segment) -> int:
        return await service.count(session, seg, _now(at))

    print(_run(segment, work))


@segments_app.command("show")
def show(
    segment: SegmentArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many contacts to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    at: AtOption = None,
) -> None:
    """The segment's first contacts (external id, email; score for best leads), and its size."""
    from relance.segments import service  # SQLAlchemy: not loaded for --help

    async def work(session: AsyncSession, seg: Segment) -> tuple[bool, int, list[Shown]]:
        now = _now(at)
        scored = bool(seg.names() & {"best_leads", "score"})
        return scored, await service.count(session, seg, now), await service.show(session, seg, now, limit)

    scored, total, shown = _run(segment, work)
    if as_json:
        contacts = [
            {"external_id": s.external_id, "email": s.email, **({"score": s.score} if scored else {})}
            for s in shown
        ]
        print(json.dumps({"count": total, "contacts": contacts}, indent=2, ensure_ascii=False))
        return
    table = Table("external id", "email", *(["score"] if scored else []))
    for s in shown:
        table.add_row(s.external_id, s.email or "", *([str(s.score)] if scored else []))
    out.print(table)
    out.print(f"{len(shown)} shown of {total}")


@segments_app.command("snapshot")
def snapshot(
    segment: SegmentArg,
    list_name: Annotated[
        str | None, typer.Option("--list", help="Name of the new list; default L<unix time>.")
    ] = None,
    at: AtOption = None,
) -> None:
    """Freeze the segment into a new static list (it no longer follows the criteria)."""
    # SQLAlchemy: not loaded for --help.
    from relance.lists import service as lists
    from relance.segments import service

    async def work(session: AsyncSession, seg: Segment) -> ListOut:
        row = await service.snapshot(session, seg, _now(at), list_name)
        return await lists.describe(session, row)

    print(json.dumps(_run(segment, work).model_dump(mode="json"), indent=2))


@segments_app.command("builtins")
def builtins() -> None:
    """The default filters, usable wherever a segment file is."""
    from relance.segments.builtins import BUILTINS  # PyYAML and the segment models: not loaded for --help

    table = Table("name", "contacts")
    for name, (what, _) in BUILTINS.items():
        table.add_row(name, what)
    table.add_row("best_leads:N", "the N best scored leads")
    table.add_row("contact_method:NAME", "contacted by that method, custom ones included")
    out.print(table)
