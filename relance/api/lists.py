"""``/v1/lists``: contact lists, their members and their salesperson (C-05, D-10)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from relance.api.deps import sessions
from relance.lists import service as lists
from relance.models.list import ListIn, ListOut, MembersIn, MergeIn, Salesperson

router = APIRouter(prefix="/v1/lists", tags=["lists"])


@router.post("", status_code=201, summary="Create a list, optionally with members and a salesperson")
async def create_list(body: ListIn, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        row = await lists.create(session, body)
        return await lists.describe(session, row)


@router.post("/merge", status_code=201, summary="A new list with the members of several lists, once each")
async def merge_lists(body: MergeIn, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        return await lists.describe(session, await lists.merge(session, body))


@router.get("/{name}", summary="A list: members, salesperson, archived or not")
async def show_list(name: str, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        return await lists.describe(session, await lists.get(session, name))


@router.post("/{name}/members", summary="Add contacts (by external id); all or none")
async def add_members(name: str, body: MembersIn, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        row = await lists.get(session, name)
        await lists.add_members(session, row, body.contacts)
        return await lists.describe(session, row)


@router.put("/{name}/salesperson", summary="Assign the salesperson who signs messages to this list")
async def assign_salesperson(name: str, body: Salesperson, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        row = await lists.get(session, name)
        lists.assign(row, body)
        return await lists.describe(session, row)


@router.post("/{name}/archive", summary="Archive (never delete): members stay, for reactivation")
async def archive_list(name: str, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        row = await lists.get(session, name)
        lists.archive(row)
        return await lists.describe(session, row)


@router.post("/{name}/reactivate", summary="Bring an archived list back, with its members")
async def reactivate_list(name: str, request: Request) -> ListOut:
    async with sessions(request)() as session, session.begin():
        row = await lists.get(session, name)
        lists.reactivate(row)
        return await lists.describe(session, row)
