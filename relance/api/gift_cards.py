"""``/v1/gift-cards``: give a contact an e-gift card, record its uses, follow it (G-01, G-04)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

from relance.gift_cards import service
from relance.models.gift_card import GiftCardIn, GiftCardState, GiftCardUseIn

router = APIRouter(prefix="/v1/gift-cards", tags=["gift cards"])


def _not_found(key: str) -> JSONResponse:
    return JSONResponse({"error": f"no gift card '{key}'", "details": []}, status_code=404)


@router.post("", status_code=202, summary="Issue a card (once per key) and send it to the contact")
async def give(body: GiftCardIn, request: Request) -> dict[str, object]:
    relance = request.app.state.relance
    wf_id, new = await service.give(relance.client, relance.settings, body)
    return {"key": body.key, "workflow_id": wf_id, "status": "issuing" if new else "duplicate"}


@router.get("/{key}", response_model=GiftCardState, summary="The card, its balance and the messages about it")
async def show(key: str, request: Request) -> Any:
    try:
        return await service.state(request.app.state.relance.client, key)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return _not_found(key)
        raise


@router.post(
    "/{key}/use", status_code=202, response_model=dict[str, str], summary="The holder spent some of it"
)
async def use(key: str, body: GiftCardUseIn, request: Request) -> Any:
    try:
        await service.use(request.app.state.relance.client, key, body.amount)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return _not_found(key)
        raise
    return {"key": key, "status": "recorded"}
