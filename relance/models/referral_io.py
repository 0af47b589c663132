"""Referrals at the edges and between ReferralWorkflow and its activities. Workflow-safe."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relance.models.journey_io import Channel


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


class ReferralAnswer(BaseModel):
    referral_id: str
    status: str  # invited, or refused
    reason: str | None = None


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
    thank_you_hours: int = Field(
        0, description="thank the sponsor this long after the invitation (0: at once)"
    )
    reward_reminder_days: int = Field(30, description="remind the sponsor of an unused reward card; 0: never")
    refer_again_days: int = Field(
        60, description="invite the sponsor to refer again after a reward; 0: never"
    )


class Conversion(BaseModel):
    order_id: str = Field(min_length=1, max_length=200)
    at: datetime


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
    messages: list[str] = Field(default_factory=list)


class CardQuery(BaseModel):
    key: str


class CardBalance(BaseModel):
    found: bool
    amount_cents: int = 0
    balance_cents: int = 0
    status: str = ""
