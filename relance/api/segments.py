"""``/v1/segments``: count, show and snapshot dynamic segments; default filters.

The segment travels as JSON in ``segment``: criteria as an object or a list of objects, or
the name of a default filter. Errors keep the API's shape, with fields under ``segment``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from relance.api.deps import sessions
from relance.lists import service as lists
from relance.models.list import ListOut
from relance.segments import service
from relance.segments.builtins import builtin
from relance.segments.load import SegmentError, parse
from relance.segments.model import Segment

router = APIRouter(prefix="/v1/segments", tags=["segments"])


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: dict[str, Any] | list[Any] | str = Field(
        description='criteria, e.g. {"club": ["A", "B"], "visits": {"min": 3, "days": 15}}, '
        "or a default filter's name such as 'best_leads'"
    )
    at: AwareDatetime | None = Field(None, description="reference time of the criteria; default: now")


class ShowIn(SegmentIn):
    limit: int = Field(20, ge=1, le=10_000)


class SnapshotIn(SegmentIn):
    list: str | None = Field(None, min_length=1, max_length=200, description="default: L<unix time>")


class CountOut(BaseModel):
    count: int


class ContactOut(BaseModel):
    external_id: str
    email: str | None
    score: int | None = None


class ShowOut(BaseModel):
    count: int
    contacts: list[ContactOut]


def _segment(body: SegmentIn) -> Segment:
    if isinstance(body.segment, str):
        return builtin(body.segment)
    return parse(body.segment, source="segment")


def _refused(error: SegmentError, prefix: str = "segment") -> JSONResponse:
    details = [
        {"field": prefix if p.field in {"segment", "file"} else f"{prefix}.{p.field}".replace(".[", "["),
         "message": p.message}
        for p in error.problems
    ]  # fmt: skip
    what = "no such default filter" if error.status == 404 else "the segment cannot be used"
    first = error.problems[0].message if len(error.problems) == 1 else f"{len(error.problems)} problems"
    return JSONResponse(status_code=error.status, content={"error": f"{what}: {first}", "details": details})


def _now(body: SegmentIn) -> datetime:
    return body.at or datetime.now(UTC)


@router.post("/count", summary="How many contacts a segment holds", response_model=CountOut)
async def count(body: SegmentIn, request: Request) -> CountOut | JSONResponse:
    try:
        segment = _segment(body)
        async with sessions(request)() as session, session.begin():
            return CountOut(count=await service.count(session, segment, _now(body)))
    except SegmentError as error:
        return _refused(error)


@router.post(
    "/show", summary="A segment's first contacts (best scores first for best leads)", response_model=ShowOut
)
async def show(body: ShowIn, request: Request) -> ShowOut | JSONResponse:
    try:
        segment = _segment(body)
        now = _now(body)
        async with sessions(request)() as session, session.begin():
            total = await service.count(session, segment, now)
            shown = await service.show(session, segment, now, body.limit)
    except SegmentError as error:
        return _refused(error)
    return ShowOut(count=total, contacts=[ContactOut(**vars(s)) for s in shown])


@router.post(
    "/snapshot", status_code=201, summary="Freeze a segment into a new static list", response_model=ListOut
)
async def snapshot(body: SnapshotIn, request: Request) -> ListOut | JSONResponse:
    try:
        segment = _segment(body)
        async with sessions(request)() as session, session.begin():
            row = await service.snapshot(session, segment, _now(body), body.list)
            return await lists.describe(session, row)
    except SegmentError as error:
        return _refused(error)


@router.get(
    "/builtin/{name}/count", summary="How many contacts a default filter holds", response_model=CountOut
)
async def builtin_count(name: str, request: Request) -> CountOut | JSONResponse:
    try:
        segment = builtin(name)
        async with sessions(request)() as session, session.begin():
            return CountOut(count=await service.count(session, segment, datetime.now(UTC)))
    except SegmentError as error:
        return _refused(error, prefix="name")
