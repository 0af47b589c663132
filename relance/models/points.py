"""Loyalty points at the edges (HTTP API): earning, gift-shop reservations, balances."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EarnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200, description="idempotency key, e.g. order-123")
    contact: str = Field(min_length=1)
    points: int = Field(gt=0, le=1_000_000)
    reason: str = Field(min_length=1, max_length=500)


class ReserveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200)
    contact: str = Field(min_length=1)
    gift: str = Field(min_length=1, max_length=200, description="the gift-shop item")
    cost: int = Field(gt=0, le=1_000_000, description="its price in points")


class Balance(BaseModel):
    contact: str
    balance: int
    entry: int | None = Field(None, description="points of the entry just recorded")
    duplicate: bool = False
