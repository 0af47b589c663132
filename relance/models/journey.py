"""Workflow inputs, outputs and state; the typed stubs of the journey and soft-bounce activities.

Workflow-safe: imports only pydantic, temporalio and the standard library, so the
sandbox re-imports it cheaply.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from temporalio import activity


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Anchor(StrEnum):
    TRIGGER = "trigger"
    PREVIOUS = "previous"


class Purpose(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"
    LEGAL = "legal"


class Priority(StrEnum):
    VERY_IMPORTANT = "very_important"
    IMPORTANT = "important"
    LOW = "low"


class OnPressure(StrEnum):
    """What happens to a marketing message that loses its day's slot (commercial pressure)."""

    DEFER = "defer"  # same local time the next day
    DROP = "drop"


class Sender(StrEnum):
    DEFAULT = "default"  # RELANCE_EMAIL_FROM
    SALESPERSON = "salesperson"  # the salesperson assigned to the contact's list (D-10)


class DeliveryStatus(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    BOUNCED = "bounced"  # sent, then reported undeliverable by the provider


class VariantSpec(BaseModel):
    id: str
    template: str
    weight: int = 1


class StepSpec(BaseModel):
    id: str
    channel: Channel
    template: str
    delay_seconds: int
    after: Anchor
    unless: list[str] = Field(default_factory=list)
    purpose: Purpose = Purpose.MARKETING
    priority: Priority = Priority.IMPORTANT
    on_pressure: OnPressure = OnPressure.DEFER
    sender: Sender = Sender.DEFAULT
    enabled: bool = True
    sms_window: tuple[str, str] | None = Field(
        None, description="local (start, end) hours an SMS may go out; None: any hour"
    )
    variants: list[VariantSpec] = Field(
        default_factory=list, description="A/B: 'a' is the message's template"
    )
    holdout_percent: int = Field(0, description="share of contacts kept as a control group (no message)")


class JourneySpec(BaseModel):
    """One journey of one scenario version, pinned into the workflow at start."""

    scenario: str
    journey: str
    version: str
    exit_on: list[str] = Field(default_factory=list)
    steps: list[StepSpec]


class TriggerEvent(BaseModel):
    event_id: int
    type: str
    ref: str
    occurred_at: datetime
    properties: dict[str, object] = Field(default_factory=dict)


class JourneyInput(BaseModel):
    spec: JourneySpec
    contact: str = Field(description="the contact's external id")
    trigger: TriggerEvent
    delivery_timeout_seconds: float = 30.0
    clock_offset_seconds: float = Field(
        0.0,
        description="simulations only: how far the server's clock runs ahead of the events' time",
    )
    due_at: dict[str, datetime] = Field(
        default_factory=dict,
        description="messages timed from the trigger's date: when each is due (computed at ingestion, "
        "where time zones may be read)",
    )


class DomainEvent(BaseModel):
    """An event of the contact routed to its running journeys."""

    type: str
    occurred_at: datetime
    event_id: int | None = None


class CancelRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class StepOutcome(BaseModel):
    step: str
    status: DeliveryStatus
    at: datetime
    reason: str | None = None
    until: datetime | None = Field(None, description="when deferred: the time to try again")


class NextSend(BaseModel):
    step: str
    at: datetime


class JourneyState(BaseModel):
    scenario: str
    journey: str
    version: str
    contact: str
    status: str
    current_step: str | None
    next_send: NextSend | None
    steps_done: list[StepOutcome]
    end_reason: str | None = None
    duplicate_triggers: int = 0


class DeliveryRequest(BaseModel):
    """What the workflow asks the delivery activity to do for one step."""

    idempotency_key: str
    workflow_id: str
    scenario: str
    journey: str
    version: str
    contact: str
    step: StepSpec
    trigger: TriggerEvent
    at: datetime = Field(description="workflow time of the decision")
    deferrals: int = Field(0, description="how many times this step was deferred already")
    resend: bool = Field(False, description="another attempt after a soft bounce: not counted again")
    arbitrate: bool = Field(
        True, description="commercial pressure: wait for rivals due together (bulk sends decide at once)"
    )


class SkipRequest(BaseModel):
    idempotency_key: str
    workflow_id: str
    scenario: str
    journey: str
    contact: str
    step: StepSpec
    at: datetime
    reason: str


class JourneyEnd(BaseModel):
    workflow_id: str
    status: str
    reason: str | None
    at: datetime


class SoftBounceInput(BaseModel):
    delivery_key: str = Field(description="the ledger key of the planned message")
    first_sent_at: datetime


class SoftBounce(BaseModel):
    delivery_key: str = Field(description="the ledger key of the attempt that bounced")
    at: datetime


class ResendRequest(BaseModel):
    delivery_key: str
    attempt: int
    at: datetime


class BounceEnd(BaseModel):
    delivery_key: str
    reason: str


# --- activity stubs: workflows call these functions, not name strings, and get typed results ---


@activity.defn(name="deliver_message")
async def deliver_message(request: DeliveryRequest) -> StepOutcome:
    """Send one step's message, or record why not.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="skip_messages")
async def skip_messages(requests: list[SkipRequest]) -> list[StepOutcome]:
    """Record planned messages that will not go out, with the reason.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="end_journey")
async def end_journey(end: JourneyEnd) -> None:
    """Record how a journey ended.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="resend_message")
async def resend_message(request: ResendRequest) -> StepOutcome:
    """Another attempt of a message that soft-bounced.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError


@activity.defn(name="end_soft_bounces")
async def end_soft_bounces(end: BounceEnd) -> None:
    """Record why the soft-bounce attempts stopped.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError
