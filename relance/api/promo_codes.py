"""``/v1/promo-codes/{pool}``: load the codes rewards are taken from, see how many are left (R-12)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from relance.api.deps import sessions
from relance.promo_codes.service import BadCodes, LoadReport, PoolStats, PromoCodeError, load_pool, pool_stats

router = APIRouter(prefix="/v1/promo-codes", tags=["promo codes"])


class CodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[str] = Field(
        min_length=1, max_length=100_000, description="3 to 64 characters each: letters, digits, '_', '-'"
    )


def _refused(status: int, error: str, details: list[tuple[str, str]]) -> JSONResponse:
    # The API's error shape ({"error", "details": [{"field", "message"}]}), from the router itself.
    body = {"error": error, "details": [{"field": field, "message": message} for field, message in details]}
    return JSONResponse(status_code=status, content=body)


@router.post(
    "/{pool}",
    response_model=LoadReport,
    summary="Add codes to a pool (codes already there are skipped); one bad code loads none",
)
async def load(pool: str, body: CodesIn, request: Request) -> LoadReport | JSONResponse:
    try:
        async with sessions(request)() as session, session.begin():
            return await load_pool(session, pool, body.codes)
    except BadCodes as bad:
        return _refused(
            422,
            f"{bad.message}: fix these codes and send the list again",
            [(f"codes.{p.line - 1}", f"'{p.code}': {p.message}") for p in bad.problems],
        )
    except PromoCodeError as error:
        return _refused(error.status, error.message, [(error.field, error.message)])


@router.get("/{pool}", response_model=PoolStats, summary="How many codes of a pool are left and given")
async def stats(pool: str, request: Request) -> PoolStats | JSONResponse:
    async with sessions(request)() as session:
        counts = await pool_stats(session, pool)
    if counts.available + counts.assigned == 0:
        message = f"no codes were ever loaded into pool '{pool}': POST them to /v1/promo-codes/{pool}"
        return _refused(404, message, [("pool", message)])
    return counts
