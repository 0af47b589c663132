"""``/v1/points``: loyalty points earned, gift-shop reservations, balances (G-02, G-03)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from sqlalchemy import select

from relance.api.deps import sessions
from relance.models.points import Balance, EarnIn, ReserveIn
from relance.models.tables.contact import Contact
from relance.points import service as points

router = APIRouter(prefix="/v1/points", tags=["points"])


@router.post("/earn", summary="Credit points (once per key)")
async def earn(body: EarnIn, request: Request) -> Balance:
    async with sessions(request)() as session, session.begin():
        return await points.earn(session, body)


@router.post("/reserve", summary="Spend points on a gift; the confirmation shows the balance left")
async def reserve(body: ReserveIn, request: Request) -> Balance:
    async with sessions(request)() as session, session.begin():
        result = await points.reserve(session, body)
    relance = request.app.state.relance
    if not result.duplicate and points.RESERVED_EVENT in relance.ingestor.scenarios().known_event_types():
        # The confirmation is a scenario's message, triggered like any other event.
        await relance.send_event(
            {
                "id": f"points:{body.key}",
                "type": points.RESERVED_EVENT,
                "contact": {"external_id": body.contact},
                "occurred_at": datetime.now(UTC).isoformat(),
                "properties": {
                    "gift": body.gift,
                    "cost": body.cost,
                    "balance": result.balance,
                    "key": body.key,
                },
            }
        )
    return result


@router.get("/{contact}", summary="A contact's balance")
async def show(contact: str, request: Request) -> Balance:
    async with sessions(request)() as session:
        row = await session.scalar(select(Contact).where(Contact.external_id == contact))
        if row is None:
            raise points.Refused("contact", f"no contact '{contact}'", 404)
        return Balance(contact=contact, balance=await points.balance_of(session, row.id))
