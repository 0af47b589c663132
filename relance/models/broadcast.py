"""Bulk sends at the edges (API, CLI) and between the workflow and its activities.

Ends with the typed stubs of its activities. Workflow-safe: pydantic, temporalio and the
standard library only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio import activity

from relance.models.journey import Priority


class ChannelMode(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"
    PREFERRED = "preferred"  # the contact's preferred_channel attribute, else email, else SMS


class Audience(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    list_name: str | None = Field(None, alias="list", description="name of a static list")
    segment: dict[str, Any] | list[Any] | None = Field(None, description="a segment's criteria")
    builtin: str | None = Field(None, description="a default filter, e.g. 'all'")

    @model_validator(mode="after")
    def _one(self) -> Audience:
        given = [k for k in ("list_name", "segment", "builtin") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'list', 'segment' or 'builtin'")
        return self


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    audience: Audience
    template: str = Field(pattern=r"^[A-Za-z0-9_\-/]+$", description="template name, as in scenarios")
    channels: ChannelMode = ChannelMode.EMAIL
    priority: Priority = Field(
        Priority.LOW, description="against journeys' messages, for commercial pressure"
    )
    at: datetime | None = Field(
        None, description="when to send; default: after the safety delay (15 minutes)"
    )


class Resume(BaseModel):
    """Where a send that continued as new takes up again (its history stays short, J-09)."""

    recipients: int | None
    processed: int
    after_seq: int
    deferred: bool


class BroadcastInput(BaseModel):
    broadcast_id: str
    send_at: datetime
    batch_size: int = 500
    rate_per_second: float = 50.0
    batches_per_run: int = Field(
        1000, ge=1, description="batches before the workflow continues as new with a fresh history"
    )
    resume: Resume | None = None


class Reschedule(BaseModel):
    at: datetime


class BatchRequest(BaseModel):
    broadcast_id: str
    after_seq: int
    batch_size: int
    rate_per_second: float
    at: datetime
    deferred: bool = Field(False, description="the pass over recipients deferred to their opening hours")


class BatchResult(BaseModel):
    last_seq: int
    processed: int
    done: bool
    next_retry: datetime | None = Field(None, description="earliest time a deferred recipient may go")


class BroadcastReport(BaseModel):
    processed: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: dict[str, int] = Field(default_factory=dict, description="by reason")


class BroadcastState(BaseModel):
    broadcast_id: str
    status: str  # scheduled, sending, completed, cancelled
    send_at: datetime
    recipients: int | None = None
    processed: int = 0
    report: BroadcastReport | None = None


# --- activity stubs: workflows call these functions, not name strings, and get typed results ---


@activity.defn(name="snapshot_audience")
async def snapshot_audience(broadcast_id: str) -> int:
    """Freeze the audience once; the number of recipients.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="send_batch")
async def send_batch(request: BatchRequest) -> BatchResult:
    """Send the next batch of recipients.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="finish_broadcast")
async def finish_broadcast(broadcast_id: str) -> BroadcastReport:
    """Count what happened to every recipient.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="set_broadcast_status")
async def set_broadcast_status(args: list[str]) -> None:
    """Record ``[broadcast_id, status]``.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError
