"""Contact lists (C-05): create, add members, assign a salesperson (D-10), archive, reactivate.

Lists are archived, never deleted: an archived list keeps its members, who are
back in it when it is reactivated.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from relance.core.errors import Refused
from relance.models.list import ListIn, ListOut, MergeIn, Salesperson
from relance.models.tables.contact import Contact
from relance.models.tables.list import ContactList, ListMember


async def create(session: AsyncSession, data: ListIn) -> ContactList:
    name = data.name or f"L{int(time.time())}"
    if await session.scalar(select(ContactList.id).where(ContactList.name == name)) is not None:
        raise Refused("name", f"a list named '{name}' exists already: pick another name", 409)
    now = datetime.now(UTC)
    row = ContactList(name=name, created_at=now, updated_at=now)
    if data.salesperson:
        row.salesperson_name, row.salesperson_email = data.salesperson.name, str(data.salesperson.email)
    session.add(row)
    await session.flush()
    if data.contacts:
        await add_members(session, row, data.contacts)
    return row


async def get(session: AsyncSession, name: str) -> ContactList:
    row = await session.scalar(select(ContactList).where(ContactList.name == name))
    if row is None:
        raise Refused("name", f"no list named '{name}'", 404)
    return row


async def add_members(session: AsyncSession, row: ContactList, external_ids: list[str]) -> int:
    """Add contacts by external id; all or none: an unknown id adds nobody."""
    wanted = list(dict.fromkeys(external_ids))
    found = dict(
        (
            await session.execute(
                select(Contact.external_id, Contact.id).where(Contact.external_id.in_(wanted))
            )
        ).all()
    )
    unknown = [e for e in wanted if e not in found]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise Refused("contacts", f"unknown contact(s): {shown}; nobody was added")
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = datetime.now(UTC)
    for contact_id in found.values():
        await session.execute(
            insert(ListMember)
            .values(list_id=row.id, contact_id=contact_id, added_at=now)
            .on_conflict_do_nothing(index_elements=["list_id", "contact_id"])
        )
    row.updated_at = now
    return len(found)


async def merge(session: AsyncSession, data: MergeIn) -> ContactList:
    """A new list holding every member of the sources, once; the sources are left as they are."""
    sources = [await get(session, name) for name in dict.fromkeys(data.sources)]
    target = await create(session, ListIn(name=data.name))
    now = datetime.now(UTC)
    members = (
        select(ListMember.contact_id)
        .where(ListMember.list_id.in_([s.id for s in sources]))
        .distinct()
        .subquery()
    )
    await session.execute(
        insert(ListMember).from_select(
            ["list_id", "contact_id", "added_at"],
            select(literal(target.id), members.c.contact_id, literal(now, type_=ListMember.added_at.type)),
        )
    )
    return target


def assign(row: ContactList, salesperson: Salesperson | None) -> None:
    row.salesperson_name = salesperson.name if salesperson else None
    row.salesperson_email = str(salesperson.email) if salesperson else None
    row.updated_at = datetime.now(UTC)


def archive(row: ContactList) -> None:
    if row.archived_at is None:
        row.archived_at = row.updated_at = datetime.now(UTC)


def reactivate(row: ContactList) -> None:
    row.archived_at, row.updated_at = None, datetime.now(UTC)


async def describe(session: AsyncSession, row: ContactList) -> ListOut:
    members = await session.scalar(select(func.count()).where(ListMember.list_id == row.id))
    person = (
        Salesperson(name=row.salesperson_name, email=row.salesperson_email)
        if row.salesperson_name and row.salesperson_email
        else None
    )
    return ListOut(
        name=row.name, members=members or 0, archived=row.archived_at is not None, salesperson=person
    )


async def salesperson_of(session: AsyncSession, contact_id: int) -> Salesperson | None:
    """The salesperson of the contact's active list that has one (the list joined last wins)."""
    found = (
        await session.execute(
            select(ContactList.salesperson_name, ContactList.salesperson_email)
            .join(ListMember, ListMember.list_id == ContactList.id)
            .where(
                ListMember.contact_id == contact_id,
                ContactList.archived_at.is_(None),
                ContactList.salesperson_email.is_not(None),
            )
            .order_by(ListMember.added_at.desc(), ContactList.id.desc())
            .limit(1)
        )
    ).first()
    return Salesperson(name=found[0], email=found[1]) if found else None
