"""Gift cards between the API, the workflow and its activities.

Ends with the typed stubs of those activities. Workflow-safe.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity


class GiftCardIn(BaseModel):
    """``POST /v1/gift-cards``: give a contact an e-gift card."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="your idempotency key (e.g. reward-<referral id>): the same key never issues twice",
    )  # fmt: skip
    contact: str = Field(min_length=1, description="the holder's external id")
    amount: float = Field(gt=0, le=10_000, description="face value, e.g. 20 for 20 €")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")


class GiftCardUseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float = Field(
        gt=0, allow_inf_nan=False, description="how much was spent; more than the balance empties it"
    )


DEFAULT_TEMPLATES = {
    "delivery": "giftcard/delivery",
    "used": "giftcard/used",
    "expiry_warning": "giftcard/expiry_warning",
    "expired": "giftcard/expired",
}
"""The template of each notice of a card, by notice (the same for cards given and rewards)."""


class GiftCardInput(BaseModel):
    key: str
    contact: str
    amount_cents: int
    currency: str
    validity_months: int = 12
    warning_days: int = 7
    templates: dict[str, str] = Field(description="delivery, used, expiry_warning, expired → template names")
    clock_offset_seconds: float = Field(0.0, description="simulations: server time minus event time")


class GiftCardUse(BaseModel):
    amount_cents: int
    at: datetime


class IssueRequest(BaseModel):
    key: str
    contact: str
    amount_cents: int
    currency: str
    at: datetime
    validity_months: int


class CardRecord(BaseModel):
    key: str
    code: str
    url: str | None
    currency: str
    amount_cents: int
    balance_cents: int
    status: str
    issued_at: datetime
    expires_at: datetime


class UseRequest(BaseModel):
    key: str
    balance_cents: int
    at: datetime


class ExpireRequest(BaseModel):
    key: str
    at: datetime


class GiftCardState(BaseModel):
    key: str
    status: str  # issuing, active, used, expired
    card: CardRecord | None = None
    messages: list[str] = Field(default_factory=list, description="step and outcome of each message")


# --- activity stubs: workflows call these functions, not name strings, and get typed results ---


@activity.defn(name="issue_gift_card")
async def issue_gift_card(request: IssueRequest) -> CardRecord:
    """Issue the card once per key.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="record_gift_card_balance")
async def record_gift_card_balance(request: UseRequest) -> CardRecord:
    """Set the balance the workflow computed.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="expire_gift_card")
async def expire_gift_card(request: ExpireRequest) -> CardRecord:
    """Mark an active card expired.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError
