"""Promo-code rewards between a workflow and its activity (R-12).

Ends with the typed stub of that activity. Workflow-safe.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import activity


class PromoCodeRequest(BaseModel):
    """Give ``contact`` one promo code under ``key``: from ``pool``, or generated with ``prefix``."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        min_length=1, max_length=200,
        description="the reward's idempotency key (e.g. reward-<referral id>): one code per key, ever",
    )  # fmt: skip
    contact: str = Field(min_length=1, description="the receiver's external id")
    mode: Literal["pool", "generated"] = "pool"
    pool: str | None = Field(None, description="mode pool: the pool codes are taken from")
    prefix: str | None = Field(None, description="mode generated: the codes' prefix, e.g. THANKS")

    @model_validator(mode="after")
    def _mode_needs_its_field(self) -> Self:
        if self.mode == "pool" and not self.pool:
            raise ValueError("mode 'pool' needs a pool")
        if self.mode == "generated" and not self.prefix:
            raise ValueError("mode 'generated' needs a prefix")
        return self


class PromoCodeResult(BaseModel):
    key: str
    contact: str
    pool: str = Field(description="the loaded pool, or generated:<prefix>")
    code: str


# --- activity stubs: workflows call these functions, not name strings, and get typed results ---


@activity.defn(name="assign_promo_code")
async def assign_promo_code(request: PromoCodeRequest) -> PromoCodeResult:
    """Give the contact one code under the key, ever.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError
