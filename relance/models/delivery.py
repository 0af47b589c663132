"""One message of a program (referral, thank-you, gift card) between its workflow and the
delivery activity. Workflow-safe.

A program's message is not a journey step: it names what it is about (``subject``, a card or a
referral), its template, channel and purpose, and the properties its template reads.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from temporalio import activity

from relance.models.journey import Channel, Purpose, StepOutcome


class ProgramMessage(BaseModel):
    idempotency_key: str = Field(description="the ledger key: one row per planned message and attempt")
    workflow_id: str
    scenario: str = Field(description="the program, e.g. referral_program, gift_card")
    subject: str = Field(description="what the message is about: a referral id, a card key")
    message: str = Field(description="the message's name within the program, e.g. reminder")
    template: str
    channel: Channel = Channel.EMAIL
    purpose: Purpose
    contact: str = Field(description="the contact's external id")
    occurred_at: datetime = Field(
        description="when what the message is about happened (the template's event)"
    )
    properties: dict[str, object] = Field(default_factory=dict)
    at: datetime = Field(description="when it is decided, in the events' time")


@activity.defn(name="deliver_program_message")
async def deliver_program_message(request: ProgramMessage) -> StepOutcome:
    """Send one program message through the send policy, or record why not.

    The worker registers the real implementation under this name.
    """
    raise NotImplementedError
