"""Segments against a database: check, count, show, snapshot into a static list (C-05, C-06)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from relance.core.yaml_source import Problem
from relance.lists import service as lists
from relance.models.list import ListIn
from relance.models.tables.contact import Contact
from relance.models.tables.list import ContactList, ListMember
from relance.segments.compile import contact_ids
from relance.segments.load import SegmentError
from relance.segments.model import Segment
from relance.segments.scoring import scores

__all__ = ["Shown", "check", "count", "show", "snapshot"]


@dataclass(frozen=True)
class Shown:
    external_id: str
    email: str | None
    score: int | None  # given when the segment is about scores


async def check(session: AsyncSession, segment: Segment) -> None:
    """Lists named by the segment must exist and be active: a typo would silently match nobody."""
    wanted = [(i, name) for i, c in enumerate(segment.criteria) for name in (c.list_ or [])]
    if not wanted:
        return
    known = dict((await session.execute(select(ContactList.name, ContactList.archived_at))).all())
    problems = []
    for index, name in wanted:
        field = f"[{index}].list" if len(segment.criteria) > 1 else "list"
        if name not in known:
            close = difflib.get_close_matches(name, [n for n, a in known.items() if a is None], n=1)
            hint = f": did you mean '{close[0]}'?" if close else ": see 'relance lists' for the names"
            problems.append(Problem(segment.source, 0, field, f"no list named '{name}'{hint}"))
        elif known[name] is not None:
            problems.append(
                Problem(
                    segment.source, 0, field,
                    f"list '{name}' is archived: reactivate it ('relance lists reactivate') or remove it",
                )
            )  # fmt: skip
    if problems:
        raise SegmentError(problems)


async def count(session: AsyncSession, segment: Segment, now: datetime) -> int:
    await check(session, segment)
    ids = contact_ids(segment, now).subquery()
    return int(await session.scalar(select(func.count()).select_from(ids)) or 0)


def _points(segment: Segment) -> dict[str, int] | None:
    for criteria in segment.criteria:
        for rule in (criteria.best_leads, criteria.score):
            if rule is not None and rule.points is not None:
                return rule.points
    return None


# (external_id, email, score): score is Any, a NULL literal in one branch and a column of the
# scores subquery (untyped) in the other
def _listing(segment: Segment, now: datetime, limit: int) -> Select[str, str | None, Any]:
    ids = contact_ids(segment, now).subquery("segment")
    if not segment.names() & {"best_leads", "score"}:
        return (
            select(Contact.external_id, Contact.email, literal(None).label("score"))
            .join(ids, ids.c.id == Contact.id)
            .order_by(Contact.id)
            .limit(limit)
        )
    table = scores(_points(segment))
    score = func.coalesce(table.c.score, 0)
    return (
        select(Contact.external_id, Contact.email, score.label("score"))
        .join(ids, ids.c.id == Contact.id)
        .outerjoin(table, table.c.contact_id == Contact.id)
        .order_by(score.desc(), Contact.id)
        .limit(limit)
    )


async def show(session: AsyncSession, segment: Segment, now: datetime, limit: int = 20) -> list[Shown]:
    """The first contacts of the segment: best scores first when it is about scores, else oldest first."""
    await check(session, segment)
    rows = await session.execute(_listing(segment, now, limit))
    return [Shown(e, m, None if s is None else int(s)) for e, m, s in rows]


async def snapshot(session: AsyncSession, segment: Segment, now: datetime, name: str | None) -> ContactList:
    """A static list holding the segment's contacts at ``now``, filled by one INSERT … SELECT."""
    await check(session, segment)
    row = await lists.create(session, ListIn(name=name))
    ids = contact_ids(segment, now).subquery("segment")
    added = datetime.now(UTC)
    await session.execute(
        insert(ListMember).from_select(
            ["list_id", "contact_id", "added_at"],
            select(literal(row.id), ids.c.id, literal(added, type_=ListMember.added_at.type)),
        )
    )
    return row
