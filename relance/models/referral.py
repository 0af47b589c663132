"""Referrals at the edges and between ReferralWorkflow and its activities.

Ends with the typed stubs of those activities. Workflow-safe.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import activity

from relance.models.journey import Channel


class RefereeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=32)
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _reachable(self) -> RefereeIn:
        if not self.email and not self.phone:
            raise ValueError("give the referee's email or phone")
        return self


class ReferralIn(BaseModel):
    """``POST /v1/referrals``: a sponsor invites a referee."""

    model_config = ConfigDict(extra="forbid")

    sponsor: str = Field(min_length=1, description="the sponsor's external id")
    referee: RefereeIn
    channel: Channel = Channel.EMAIL


class InvitationsIn(BaseModel):
    """``POST /v1/referrals/invitations``: a sponsor invites several friends at once (one thank-you)."""

    model_config = ConfigDict(extra="forbid")

    sponsor: str = Field(min_length=1, description="the sponsor's external id")
    referees: list[RefereeIn] = Field(min_length=1, max_length=50)
    channel: Channel = Channel.EMAIL


class ThankYouMode(StrEnum):
    """When the sponsor is thanked for inviting (R-08)."""

    IMMEDIATELY = "immediately"  # as soon as they ask, before the invitations go out
    AFTER_INVITATIONS = "after_invitations"  # once every invitation of the batch is out
    NEXT_DAY = "24h"  # a day later


class ReferralAnswer(BaseModel):
    referral_id: str
    status: str = Field(description="invited or refused (with a reason)")
    referee: str | None = Field(None, description="the referee's email or phone")
    reason: str | None = None


class InvitationsAnswer(BaseModel):
    batch_id: str
    referrals: list[ReferralAnswer]


class ReferralOutcome(BaseModel):
    """What an event did to the referral program, in the answer to ``POST /v1/events``."""

    referral_id: str | None = None
    status: str = Field(
        description="invited, refused, reconciled, cancelled (the return reached the referral), "
        "ignored (nothing to do, see detail) or unknown (no such referral or code)"
    )
    detail: str | None = None


RewardKind = Literal["gift_card", "promo_pool", "promo_generated"]


class Conversion(BaseModel):
    order_id: str = Field(min_length=1, max_length=200)
    at: datetime


class ReferralInput(BaseModel):
    referral_id: str
    sponsor: str
    referee: str
    channel: Channel
    sponsor_name: str
    reminder_days: int = 7
    inactive_days: int = 14
    expire_days: int = 90
    validation_days: int = 15
    reward_amount: float = 10.0
    reward_currency: str = "EUR"
    reward: RewardKind = Field(
        "gift_card", description="what the sponsor gets once the referral is validated"
    )
    promo_pool: str = Field("referral", description="reward promo_pool: the pool codes are taken from")
    promo_prefix: str = Field("THANKS", description="reward promo_generated: the codes' prefix")
    batch_id: str | None = Field(None, description="tell this batch's thank-you when the invitation is out")
    conversion: Conversion | None = Field(
        None, description="the referee came through a shared link and bought already: no invitation"
    )
    clock_offset_seconds: float = Field(0.0, description="simulations: server time minus event time")
    reward_reminder_days: int = Field(30, description="remind the sponsor of an unused reward card; 0: never")
    refer_again_days: int = Field(
        60, description="invite the sponsor to refer again after a reward; 0: never"
    )


class ThanksInput(BaseModel):
    batch_id: str
    sponsor: str
    sponsor_name: str
    referral_ids: list[str]
    referees: list[str] = Field(description="first names (or addresses) for the message")
    mode: ThankYouMode
    wait_hours: float = Field(1.0, description="after_invitations: thank anyway after this long")
    clock_offset_seconds: float = 0.0


class Cancellation(BaseModel):
    order_id: str = Field(min_length=1, max_length=200)
    at: datetime


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ReferralStatus(BaseModel):
    referral_id: str
    status: str
    reason: str | None = None
    order_id: str | None = None


class ReferralState(BaseModel):
    referral_id: str
    status: str
    order_id: str | None = None
    reason: str | None = None
    reward_code: str | None = Field(None, description="the promo code given, for promo-code rewards")
    messages: list[str] = Field(default_factory=list)


class CardQuery(BaseModel):
    key: str


class CodeUseQuery(BaseModel):
    contact: str
    code: str
    since: datetime


class CardBalance(BaseModel):
    found: bool
    amount_cents: int = 0
    balance_cents: int = 0
    status: str = ""


# --- activity stubs: workflows call these functions, not name strings, and get typed results ---


@activity.defn(name="record_referral_status")
async def record_referral_status(status: ReferralStatus) -> None:
    """Record the referral's new status.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="promo_code_used")
async def promo_code_used(query: CodeUseQuery) -> bool:
    """Whether a purchase of the contact since ``since`` carried the code.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="gift_card_balance")
async def gift_card_balance(query: CardQuery) -> CardBalance:
    """The reward card's amount, balance and status.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError
