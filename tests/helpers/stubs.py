"""Stub activities under the real activity names, for workflow tests without a database.

Each stub records its call (the activity name, the server time it was scheduled at, which is the
workflow's ``workflow.now()`` when it asked, and the payload) and returns a canned answer that a
test may change. ``running_workers`` runs the real workflow classes against them on a
time-skipping server, on a task queue of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relance.models.broadcast import BatchRequest, BatchResult, BroadcastReport
from relance.models.delivery import ProgramMessage
from relance.models.gift_card import CardRecord, ExpireRequest, IssueRequest, UseRequest
from relance.models.journey import (
    BounceEnd,
    DeliveryRequest,
    DeliveryStatus,
    JourneyEnd,
    ResendRequest,
    SkipRequest,
    StepOutcome,
)
from relance.models.promo_code import PromoCodeRequest, PromoCodeResult
from relance.models.referral import CardBalance, CardQuery, CodeUseQuery, ReferralStatus
from relance.worker import WORKFLOWS

CARD_VALIDITY = timedelta(days=365)


@dataclass
class Call:
    activity: str
    at: datetime  # when the workflow scheduled it, in the server's (skipped) time
    payload: Any


def sent(request: DeliveryRequest) -> StepOutcome:
    return StepOutcome(step=request.step.id, status=DeliveryStatus.SENT, at=request.at)


@dataclass
class Stubs:
    """The worker's activities, recorded; the fields are the canned answers."""

    calls: list[Call] = field(default_factory=list)
    deliver: Callable[[DeliveryRequest], StepOutcome] = sent
    resend_status: DeliveryStatus = DeliveryStatus.SENT
    reward_used: bool = False
    reward_card: CardBalance = field(default_factory=lambda: CardBalance(found=False))
    recipients: int = 0
    batches: list[BatchResult] = field(default_factory=list)
    cards: dict[str, CardRecord] = field(default_factory=dict)

    def named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.activity == name]

    def deliveries(self) -> list[tuple[str, datetime]]:
        """(message, time) of every journey step and program message delivered, in order."""
        return [
            (c.payload.message if isinstance(c.payload, ProgramMessage) else c.payload.step.id, c.at)
            for c in self.calls
            if c.activity in ("deliver_message", "deliver_program_message")
        ]

    def _record(self, payload: Any) -> datetime:
        info = activity.info()
        self.calls.append(Call(info.activity_type, info.current_attempt_scheduled_time, payload))
        return info.current_attempt_scheduled_time

    # --- delivery --------------------------------------------------------------------

    @activity.defn(name="deliver_message")
    async def deliver_message(self, request: DeliveryRequest) -> StepOutcome:
        self._record(request)
        return self.deliver(request)

    @activity.defn(name="deliver_program_message")
    async def deliver_program_message(self, request: ProgramMessage) -> StepOutcome:
        self._record(request)
        return StepOutcome(step=request.message, status=DeliveryStatus.SENT, at=request.at)

    @activity.defn(name="skip_messages")
    async def skip_messages(self, requests: list[SkipRequest]) -> list[StepOutcome]:
        self._record(requests)
        return [
            StepOutcome(step=r.step.id, status=DeliveryStatus.SKIPPED, at=r.at, reason=r.reason)
            for r in requests
        ]

    @activity.defn(name="end_journey")
    async def end_journey(self, end: JourneyEnd) -> None:
        self._record(end)

    @activity.defn(name="resend_message")
    async def resend_message(self, request: ResendRequest) -> StepOutcome:
        self._record(request)
        reason = None if self.resend_status is DeliveryStatus.SENT else "contact unsubscribed"
        return StepOutcome(step="resend", status=self.resend_status, at=request.at, reason=reason)

    @activity.defn(name="end_soft_bounces")
    async def end_soft_bounces(self, end: BounceEnd) -> None:
        self._record(end)

    # --- gift cards --------------------------------------------------------------------

    @activity.defn(name="issue_gift_card")
    async def issue_gift_card(self, request: IssueRequest) -> CardRecord:
        self._record(request)
        card = CardRecord(
            key=request.key,
            code=f"GC-{len(self.cards) + 1:04d}",
            url=None,
            currency=request.currency,
            amount_cents=request.amount_cents,
            balance_cents=request.amount_cents,
            status="active",
            issued_at=request.at,
            expires_at=request.at + CARD_VALIDITY,
        )
        self.cards[request.key] = card
        return card

    @activity.defn(name="record_gift_card_balance")
    async def record_gift_card_balance(self, request: UseRequest) -> CardRecord:
        self._record(request)
        card = self.cards[request.key].model_copy(update={"balance_cents": request.balance_cents})
        self.cards[request.key] = card
        return card

    @activity.defn(name="expire_gift_card")
    async def expire_gift_card(self, request: ExpireRequest) -> CardRecord:
        self._record(request)
        card = self.cards[request.key].model_copy(update={"status": "expired"})
        self.cards[request.key] = card
        return card

    # --- referrals and rewards -----------------------------------------------------------

    @activity.defn(name="record_referral_status")
    async def record_referral_status(self, status: ReferralStatus) -> None:
        self._record(status)

    @activity.defn(name="promo_code_used")
    async def promo_code_used(self, query: CodeUseQuery) -> bool:
        self._record(query)
        return self.reward_used

    @activity.defn(name="gift_card_balance")
    async def gift_card_balance(self, query: CardQuery) -> CardBalance:
        self._record(query)
        return self.reward_card

    @activity.defn(name="assign_promo_code")
    async def assign_promo_code(self, request: PromoCodeRequest) -> PromoCodeResult:
        self._record(request)
        pool = request.pool or f"generated:{request.prefix}"
        return PromoCodeResult(
            key=request.key, contact=request.contact, pool=pool, code=f"{request.prefix}-0001"
        )

    # --- bulk sends ----------------------------------------------------------------------

    @activity.defn(name="snapshot_audience")
    async def snapshot_audience(self, broadcast_id: str) -> int:
        self._record(broadcast_id)
        return self.recipients

    @activity.defn(name="send_batch")
    async def send_batch(self, request: BatchRequest) -> BatchResult:
        self._record(request)
        return self.batches.pop(0)

    @activity.defn(name="finish_broadcast")
    async def finish_broadcast(self, broadcast_id: str) -> BroadcastReport:
        self._record(broadcast_id)
        return BroadcastReport(processed=self.recipients, sent=self.recipients)

    @activity.defn(name="set_broadcast_status")
    async def set_broadcast_status(self, args: list[str]) -> None:
        self._record(args)

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.deliver_message,
            self.deliver_program_message,
            self.skip_messages,
            self.end_journey,
            self.resend_message,
            self.end_soft_bounces,
            self.issue_gift_card,
            self.record_gift_card_balance,
            self.expire_gift_card,
            self.record_referral_status,
            self.promo_code_used,
            self.gift_card_balance,
            self.assign_promo_code,
            self.snapshot_audience,
            self.send_batch,
            self.finish_broadcast,
            self.set_broadcast_status,
        ]


@asynccontextmanager
async def running_workers(env: WorkflowEnvironment, stubs: Stubs) -> AsyncIterator[str]:
    """Every relance workflow on a worker of its own, with the stubs; yields its task queue."""
    task_queue = f"stub-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=task_queue, workflows=WORKFLOWS, activities=stubs.activities()):
        yield task_queue
