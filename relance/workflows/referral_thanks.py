"""ReferralThanksWorkflow: one thank-you to the sponsor per batch of invitations (R-08).

The sponsor is thanked immediately, a day later, or once every invitation of the
batch is out (each ReferralWorkflow says so); if some invitation never goes out,
the thank-you leaves anyway after a short wait.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relance.models.journey import Purpose
    from relance.models.referral import ThanksInput, ThankYouMode
    from relance.workflows.common import events_now, wait_until
    from relance.workflows.messages import send_message
    from relance.workflows.referral import REFERRAL_SCENARIO


@workflow.defn
class ReferralThanksWorkflow:
    @workflow.init
    def __init__(self, input: ThanksInput) -> None:
        self._sent: set[str] = set()

    @workflow.signal
    def invitation_sent(self, referral_id: str) -> None:
        self._sent.add(referral_id)

    @workflow.query
    def invitations_sent(self) -> list[str]:
        return sorted(self._sent)

    @workflow.run
    async def run(self, input: ThanksInput) -> str:
        if input.mode == ThankYouMode.NEXT_DAY:
            await workflow.sleep(timedelta(hours=24))
        elif input.mode == ThankYouMode.AFTER_INVITATIONS:
            # Past the wait, an invitation is stuck (provider down, no address): thank for the others.
            # Always armed, as this workflow always waited: its histories count the timer.
            await wait_until(
                workflow.now() + timedelta(hours=input.wait_hours),
                unless=lambda: self._sent >= set(input.referral_ids),
                always_arm=True,
            )
        outcome = await send_message(
            scenario=REFERRAL_SCENARIO,
            subject_id=input.batch_id,
            step="thank_you",
            template="referral/thank_you",
            contact=input.sponsor,
            purpose=Purpose.TRANSACTIONAL,  # the answer to what the sponsor just did
            occurred_at=events_now(timedelta(seconds=input.clock_offset_seconds)),
            properties={
                "sponsor_name": input.sponsor_name,
                "referees": input.referees,
                "invited": len(input.referral_ids),
            },
            clock_offset_seconds=input.clock_offset_seconds,
        )
        return outcome.status.value
