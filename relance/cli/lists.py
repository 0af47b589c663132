"""``relance lists``: contact lists from the command line (same rules as ``/v1/lists``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from relance.cli.run import fail, with_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from relance.lists.service import ContactList
    from relance.models.list import ListOut, Salesperson

lists_app = typer.Typer(
    help="Contact lists: create, add members, assign a salesperson, archive.", no_args_is_help=True
)


def _run(work: Callable[[AsyncSession], Awaitable[ListOut]]) -> None:
    """One transaction: it all happens, or, on an error, nothing does."""
    result = with_session(work, transaction=True)
    print(json.dumps(result.model_dump(mode="json"), indent=2))


def _salesperson(name: str, email: str) -> Salesperson:
    from relance.models.list import Salesperson  # email_validator: not loaded for --help

    try:
        return Salesperson(name=name, email=email)
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in error.errors())
        fail(f"salesperson: {problems}", code=2)


@lists_app.command("create")
def create(
    name: Annotated[str | None, typer.Argument(help="Default: L<unix time>.")] = None,
    contact: Annotated[
        list[str] | None, typer.Option("--contact", "-c", help="External id; repeatable.")
    ] = None,
) -> None:
    """Create a list, empty or with the given contacts."""
    # SQLAlchemy, and the models' email_validator: not loaded for --help.
    from relance.lists import service as lists
    from relance.models.list import ListIn

    async def work(session: AsyncSession) -> ListOut:
        return await lists.describe(
            session, await lists.create(session, ListIn(name=name, contacts=contact or []))
        )

    _run(work)


@lists_app.command("add")
def add(name: str, contacts: Annotated[list[str], typer.Argument(help="External ids.")]) -> None:
    """Add contacts to a list; an unknown id adds nobody."""
    from relance.lists import service as lists  # SQLAlchemy: not loaded for --help

    async def work(session: AsyncSession) -> ListOut:
        row = await lists.get(session, name)
        await lists.add_members(session, row, contacts)
        return await lists.describe(session, row)

    _run(work)


@lists_app.command("merge")
def merge(
    sources: Annotated[list[str], typer.Argument(help="Names of the lists to merge (two or more).")],
    into: Annotated[
        str | None, typer.Option("--into", help="Name of the new list; default L<unix time>.")
    ] = None,
) -> None:
    """A new list with the members of the given lists, once each; the sources stay as they are."""
    # SQLAlchemy, and the models' email_validator: not loaded for --help.
    from relance.lists import service as lists
    from relance.models.list import MergeIn

    try:
        data = MergeIn(sources=sources, name=into)
    except ValidationError:
        fail("sources: give two lists or more", code=2)

    async def work(session: AsyncSession) -> ListOut:
        return await lists.describe(session, await lists.merge(session, data))

    _run(work)


@lists_app.command("assign")
def assign(
    name: str,
    salesperson: Annotated[str, typer.Option("--name", help="Who signs messages to this list.")],
    email: Annotated[str, typer.Option("--email", help="Their address (From of 'sender: salesperson').")],
) -> None:
    """Assign the salesperson who signs messages sent to the list's contacts (D-10)."""
    from relance.lists import service as lists  # SQLAlchemy: not loaded for --help

    person = _salesperson(salesperson, email)

    async def work(session: AsyncSession) -> ListOut:
        row = await lists.get(session, name)
        lists.assign(row, person)
        return await lists.describe(session, row)

    _run(work)


def _toggle(name: str, change: Callable[[ContactList], None]) -> None:
    from relance.lists import service as lists  # SQLAlchemy: not loaded for --help

    async def work(session: AsyncSession) -> ListOut:
        row = await lists.get(session, name)
        change(row)
        return await lists.describe(session, row)

    _run(work)


@lists_app.command("archive")
def archive(name: str) -> None:
    """Archive a list (never deleted: its members stay for a reactivation)."""
    from relance.lists import service as lists  # SQLAlchemy: not loaded for --help

    _toggle(name, lists.archive)


@lists_app.command("reactivate")
def reactivate(name: str) -> None:
    """Bring an archived list back, with its members."""
    from relance.lists import service as lists  # SQLAlchemy: not loaded for --help

    _toggle(name, lists.reactivate)


@lists_app.command("show")
def show(name: str) -> None:
    """A list's members count, salesperson and state, as JSON."""
    _toggle(name, lambda row: None)
