"""SoftBounceWorkflow: a message that soft-bounced is tried again, 3 attempts within 24 hours.

Started by the first soft-bounce notification of a message (signal-with-start,
one workflow per planned message). The second attempt goes 12 hours after the
first send, the third 24 hours after it, each only if the previous one bounced
too. After the third bounce, or when an attempt is not sent (the contact
unsubscribed meanwhile, ...), it stops: the contact gets the next message as usual.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relance.models.journey import (
        BounceEnd,
        DeliveryStatus,
        ResendRequest,
        SoftBounce,
        SoftBounceInput,
        StepOutcome,
        end_soft_bounces,
        resend_message,
    )
    from relance.workflows.common import BOOKKEEPING_TIMEOUT, DELIVERY_RETRY, PROVIDER_TIMEOUT, wait_until

# When the 2nd and 3rd attempts go, counted from the first send (004: 3 attempts over 24 h).
ATTEMPTS_AFTER_FIRST_SEND = (timedelta(hours=12), timedelta(hours=24))
# How long to listen for a bounce of the last attempt; providers report within minutes.
BOUNCE_NEWS_WINDOW = timedelta(hours=24)


@workflow.defn
class SoftBounceWorkflow:
    @workflow.init
    def __init__(self, input: SoftBounceInput) -> None:
        self._bounced: list[SoftBounce] = []

    @workflow.signal
    def bounced(self, bounce: SoftBounce) -> None:
        if all(b.delivery_key != bounce.delivery_key for b in self._bounced):  # SNS may repeat itself
            self._bounced.append(bounce)

    @workflow.query
    def attempts_bounced(self) -> int:
        return len(self._bounced)

    @workflow.run
    async def run(self, input: SoftBounceInput) -> str:
        for attempt, offset in enumerate(ATTEMPTS_AFTER_FIRST_SEND, start=2):
            if not await self._bounce_of(attempt - 1):
                return await self._end(input, f"attempt {attempt - 1} was not reported bounced")
            await workflow.sleep(max(timedelta(0), input.first_sent_at + offset - workflow.now()))
            outcome: StepOutcome = await workflow.execute_activity(
                resend_message,
                ResendRequest(delivery_key=input.delivery_key, attempt=attempt, at=workflow.now()),
                start_to_close_timeout=PROVIDER_TIMEOUT,
                retry_policy=DELIVERY_RETRY,
            )
            if outcome.status is not DeliveryStatus.SENT:
                return await self._end(input, f"attempt {attempt} {outcome.status.value}: {outcome.reason}")
        if await self._bounce_of(len(ATTEMPTS_AFTER_FIRST_SEND) + 1):
            return await self._end(input, "soft-bounced 3 times within 24 hours: no more attempts")
        return await self._end(input, "the last attempt was not reported bounced")

    async def _bounce_of(self, attempts: int) -> bool:
        """Wait until that many attempts bounced; False when no news comes in time."""
        # Always armed: the first bounce is in before run() starts, and histories count that timer.
        return await wait_until(
            workflow.now() + BOUNCE_NEWS_WINDOW,
            unless=lambda: len(self._bounced) >= attempts,
            always_arm=True,
        )

    async def _end(self, input: SoftBounceInput, reason: str) -> str:
        await workflow.execute_activity(
            end_soft_bounces,
            BounceEnd(delivery_key=input.delivery_key, reason=reason),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        )
        return reason
