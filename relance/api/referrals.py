"""``/v1/referrals``: invitations, conversions, returns and operator rejection (R-05 … R-17)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from relance.models.referral import (
    InvitationsAnswer,
    InvitationsIn,
    ReferralAnswer,
    ReferralIn,
    ReferralState,
)
from relance.referrals.service import Referrals
from relance.starter.facade import Relance

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=200)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class CodeOut(BaseModel):
    sponsor: str
    code: str = Field(description="typed at checkout, or carried by the sponsor's shared link")


def _referrals(request: Request) -> Referrals:
    referrals: Referrals = request.app.state.relance.referrals
    return referrals


@router.post("", status_code=201, response_model=ReferralAnswer, summary="A sponsor invites a referee")
async def invite(body: ReferralIn, request: Request) -> JSONResponse | ReferralAnswer:
    relance: Relance = request.app.state.relance
    [answer] = (await relance.invite_referees(body.sponsor, [body.referee], body.channel)).referrals
    if answer.status == "refused":  # the fraud guards said no: a 422 that says why
        return JSONResponse(
            {"error": f"referral refused: {answer.reason}", "referral_id": answer.referral_id,
             "details": [{"field": "referee", "message": answer.reason}]},
            status_code=422,
        )  # fmt: skip
    return answer


@router.post(
    "/invitations",
    status_code=201,
    response_model=InvitationsAnswer,
    summary="A sponsor invites several friends; one thank-you for them all",
)
async def invite_many(body: InvitationsIn, request: Request) -> InvitationsAnswer:
    """Each friend is invited or refused with a reason; refusals do not stop the others."""
    relance: Relance = request.app.state.relance
    return await relance.invite_referees(body.sponsor, list(body.referees), body.channel)


@router.get("/codes/{sponsor}", response_model=CodeOut, summary="The sponsor's referral code")
async def code(sponsor: str, request: Request) -> CodeOut:
    """Made on first use. A purchase event with ``properties.referral_code`` reconciles with it."""
    return CodeOut(sponsor=sponsor, code=await _referrals(request).code_for(sponsor))


@router.get("/{referral_id}", response_model=ReferralState, summary="Where a referral stands")
async def show(referral_id: str, request: Request) -> ReferralState:
    return await _referrals(request).state(referral_id)


@router.post("/{referral_id}/convert", response_model=ReferralState, summary="The referee bought")
async def convert(referral_id: str, body: OrderIn, request: Request) -> ReferralState:
    return await _referrals(request).convert(referral_id, body.order_id)


@router.post("/{referral_id}/cancel-order", response_model=ReferralState, summary="The purchase was returned")
async def cancel_order(referral_id: str, body: OrderIn, request: Request) -> ReferralState:
    return await _referrals(request).cancel_order(referral_id, body.order_id)


@router.post("/{referral_id}/reject", response_model=ReferralState, summary="An operator rejects it")
async def reject(referral_id: str, body: RejectIn, request: Request) -> ReferralState:
    return await _referrals(request).reject(referral_id, body.reason)
