"""Sending one message from a workflow other than a journey (gift cards, referrals, thank-yous).

It goes through the same send policy as journeys (eligibility, rendering, the ledger's
exactly-once claim) as a program message, not a journey step. Workflows started before
``program-message-v1`` keep sending through ``deliver_message`` in a step's shape, so their
histories replay. Workflow-safe.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relance.models.delivery import ProgramMessage, deliver_program_message
    from relance.models.journey import (
        Anchor,
        Channel,
        DeliveryRequest,
        Purpose,
        StepOutcome,
        StepSpec,
        TriggerEvent,
        deliver_message,
    )
    from relance.workflows.common import DELIVERY_RETRY, PROVIDER_TIMEOUT, events_now


async def send_message(
    *,
    scenario: str,
    subject_id: str,
    step: str,
    template: str,
    contact: str,
    purpose: Purpose,
    occurred_at: datetime,
    properties: dict[str, object],
    channel: Channel = Channel.EMAIL,
    attempt: int = 0,
    clock_offset_seconds: float = 0.0,
) -> StepOutcome:
    """``subject_id`` names what the message is about (a card, a referral); with ``step`` and
    ``attempt`` it makes the ledger key, so a replayed or retried send is never doubled.
    ``clock_offset_seconds`` dates the ledger row in the events' time (simulations)."""
    wf_id = workflow.info().workflow_id
    key = f"{wf_id}:{step}:{channel.value}:{attempt}"  # the ledger's: never change its format
    at = events_now(timedelta(seconds=clock_offset_seconds))
    if workflow.patched("program-message-v1"):
        return await workflow.execute_activity(
            deliver_program_message,
            ProgramMessage(
                idempotency_key=key,
                workflow_id=wf_id,
                scenario=scenario,
                subject=subject_id,
                message=step,
                template=template,
                channel=channel,
                purpose=purpose,
                contact=contact,
                occurred_at=occurred_at,
                properties=properties,
                at=at,
            ),
            start_to_close_timeout=PROVIDER_TIMEOUT,
            retry_policy=DELIVERY_RETRY,
        )
    return await workflow.execute_activity(
        deliver_message,
        DeliveryRequest(
            idempotency_key=key,
            workflow_id=wf_id,
            scenario=scenario,
            journey=subject_id,
            version="",
            contact=contact,
            step=StepSpec(
                id=step,
                channel=channel,
                template=template,
                delay_seconds=0,
                after=Anchor.TRIGGER,
                purpose=purpose,
            ),
            trigger=TriggerEvent(
                event_id=0, type=scenario, ref=subject_id, occurred_at=occurred_at, properties=properties
            ),
            at=at,
        ),
        start_to_close_timeout=PROVIDER_TIMEOUT,
        retry_policy=DELIVERY_RETRY,
    )
