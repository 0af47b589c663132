"""One message to deliver, as the send policy sees it, whoever asked for it.

Journeys, referrals, gift cards, soft-bounce retries and bulk sends all describe
their message this way; the policy, the renderer and the ledger read nothing
else. The keys it derives are the ledger's and the daily cap's: they are part of
the stored data, so their formats never change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from relance.models.journey import Channel, OnPressure, Priority, Purpose, Sender, VariantSpec


@dataclass(frozen=True)
class Occasion:
    """What the message is about, for the template: the trigger of a journey, a card, a bulk send."""

    type: str
    occurred_at: datetime
    properties: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    key: str  # the ledger's idempotency key: one row per planned message
    workflow_id: str
    scenario: str
    journey: str  # the journey, or what the message is about (a card, a referral, a bulk send)
    id: str  # the message's name within its journey (the ledger's ``message``)
    contact: str  # the contact's external id
    channel: Channel
    template: str
    purpose: Purpose
    at: datetime  # when it is decided, on the caller's clock (events' time in simulations)
    occasion: Occasion | None = None  # the template's ``event``; none for a message only recorded skipped
    priority: Priority = Priority.IMPORTANT
    on_pressure: OnPressure = OnPressure.DEFER
    sender: Sender = Sender.DEFAULT
    sms_window: tuple[str, str] | None = None  # local (start, end) hours an SMS may go out
    variants: Sequence[VariantSpec] = ()
    holdout_percent: int = 0
    deferrals: int = 0  # how many times it was deferred already
    resend: bool = False  # another attempt after a soft bounce: its daily slot is already counted
    arbitrate: bool = True  # commercial pressure: wait for rivals due together

    @property
    def claim_key(self) -> str:
        """The key of its request for a daily slot: one per attempt after a deferral."""
        return f"{self.key}#{self.deferrals}"

    @property
    def deferred_key(self) -> str:
        """The ledger key of a deferral's row; the message's own row stays free for later."""
        return f"{self.key}#deferred{self.deferrals}"
