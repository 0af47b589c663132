"""ReferralWorkflow: one sponsor, one referee, from the invitation to the reward (R-05 … R-15).

The referee is invited (unless they came through a shared link and bought
already); if they have not bought a week later they get one reminder (only
with their marketing opt-in), and the sponsor hears after two weeks that their
friend has not come yet. The sponsor's thank-you belongs to the batch of
invitations (ReferralThanksWorkflow), which hears when this one is out. When the referee's purchase arrives
the referral is reconciled and both are told; the reward waits out the
validation window (the withdrawal period), and a return or cancellation in it
abandons the referral. Then the referee hears it is validated, and the sponsor
gets the reward: an e-gift card with its own workflow. An operator may reject
the referral until it is validated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from relance.models.gift_card import DEFAULT_TEMPLATES, GiftCardInput
    from relance.models.journey import Channel, Purpose
    from relance.models.promo_code import PromoCodeRequest, assign_promo_code
    from relance.models.referral import (
        Cancellation,
        CardQuery,
        CodeUseQuery,
        Conversion,
        ReferralInput,
        ReferralState,
        ReferralStatus,
        Rejection,
        gift_card_balance,
        promo_code_used,
        record_referral_status,
    )
    from relance.workflows import ids
    from relance.workflows.common import BOOKKEEPING_TIMEOUT, REWARD_RETRY, events_now, wait_until
    from relance.workflows.gift_card import GiftCardWorkflow
    from relance.workflows.messages import send_message
    from relance.workflows.search_attributes import REFERRAL_ID, STEP

REFERRAL_SCENARIO = "referral_program"


def _reward_key(referral_id: str) -> str:
    """The sponsor's reward, card or code, under one idempotency key per referral."""
    return f"reward-{referral_id}"


@workflow.defn
class ReferralWorkflow:
    @workflow.init
    def __init__(self, input: ReferralInput) -> None:
        self._input = input
        self._offset = timedelta(seconds=input.clock_offset_seconds)
        self._status = "invited"
        self._conversion: Conversion | None = None
        self._cancellation: Cancellation | None = None
        self._rejection: Rejection | None = None
        self._reward_code: str | None = None
        self._messages: list[str] = []
        self._started = events_now(self._offset)

    # --- what happens outside ---------------------------------------------------------

    @workflow.signal
    def converted(self, conversion: Conversion) -> None:
        if self._conversion is None:  # the same purchase twice, or a second one: one reward
            self._conversion = conversion

    @workflow.signal
    def cancelled(self, cancellation: Cancellation) -> None:
        if self._conversion is not None and cancellation.order_id == self._conversion.order_id:
            self._cancellation = cancellation

    @workflow.update
    def reject(self, rejection: Rejection) -> ReferralState:
        self._rejection = rejection
        return self.state()

    @reject.validator
    def _may_reject(self, rejection: Rejection) -> None:
        if self._status not in ("invited", "reconciled"):
            raise ValueError(f"the referral is {self._status}: it can no longer be rejected")

    @workflow.query
    def state(self) -> ReferralState:
        reason = self._rejection.reason if self._rejection else None
        order = self._conversion.order_id if self._conversion else None
        return ReferralState(
            referral_id=self._input.referral_id,
            status=self._status,
            order_id=order,
            reason=reason,
            reward_code=self._reward_code,
            messages=self._messages,
        )

    # --- the referral -----------------------------------------------------------------

    @workflow.run
    async def run(self, input: ReferralInput) -> ReferralState:
        if input.conversion is not None:  # came through a shared link and bought: nothing to invite to
            self._conversion = input.conversion
        else:
            await self._invite(input)
        if self._rejection is not None:
            return await self._end("rejected", self._rejection.reason)
        if self._conversion is None:
            return await self._end("abandoned", "the referee did not buy in time", notify=False)

        conversion = self._conversion
        assert conversion is not None
        await self._record("reconciled")
        await self._to_sponsor("reconciled_sponsor")
        await self._to_referee("reconciled_referee", Purpose.TRANSACTIONAL)
        window_end = conversion.at + timedelta(days=input.validation_days)
        if await wait_until(
            window_end,
            unless=lambda: self._cancellation is not None or self._rejection is not None,
            offset=self._offset,
        ):
            if self._rejection is not None:
                return await self._end("rejected", self._rejection.reason)
            return await self._end("abandoned", f"order {conversion.order_id} was returned or cancelled")

        await self._record("validated")
        await self._to_referee("validated_referee", Purpose.TRANSACTIONAL)
        await self._reward(input)
        await self._to_sponsor("reward_sponsor")
        await self._record("rewarded")
        rewarded = events_now(self._offset)
        if input.reward_reminder_days:
            await workflow.sleep(timedelta(days=input.reward_reminder_days))
            if not await self._reward_used(input, rewarded):
                await self._to_sponsor("reward_reminder")
        if input.refer_again_days:
            refer_again_at = rewarded + timedelta(days=input.refer_again_days)
            await workflow.sleep(max(timedelta(0), refer_again_at - events_now(self._offset)))
            await self._to_sponsor("refer_again")
        return self.state()

    async def _reward(self, input: ReferralInput) -> None:
        """An e-gift card with its own workflow, or a promo code (waiting, if the pool is empty,
        until an operator loads more: the activity retries, the referral stays validated)."""
        key = _reward_key(input.referral_id)
        if input.reward == "gift_card":
            await workflow.start_child_workflow(
                GiftCardWorkflow.run,
                GiftCardInput(
                    key=key,
                    contact=input.sponsor,
                    amount_cents=round(input.reward_amount * 100),
                    currency=input.reward_currency,
                    templates=DEFAULT_TEMPLATES,
                    clock_offset_seconds=input.clock_offset_seconds,
                ),
                id=ids.gift_card(key),
                parent_close_policy=ParentClosePolicy.ABANDON,  # the card lives its own year
            )
            return
        pooled = input.reward == "promo_pool"
        given = await workflow.execute_activity(
            assign_promo_code,
            PromoCodeRequest(
                key=key,
                contact=input.sponsor,
                mode="pool" if pooled else "generated",
                pool=input.promo_pool if pooled else None,
                prefix=None if pooled else input.promo_prefix,
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=REWARD_RETRY,
        )
        self._reward_code = given.code

    async def _reward_used(self, input: ReferralInput, since: datetime) -> bool:
        if self._reward_code is not None:
            return await workflow.execute_activity(
                promo_code_used,
                CodeUseQuery(contact=input.sponsor, code=self._reward_code, since=since),
                start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            )
        card = await workflow.execute_activity(
            gift_card_balance,
            CardQuery(key=_reward_key(input.referral_id)),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        )
        return not (card.found and card.status == "active" and card.balance_cents == card.amount_cents)

    async def _invite(self, input: ReferralInput) -> None:
        """Invitation, reminder, inactive alert: until the referee buys, is rejected, or time is up."""
        await self._to_referee("invitation", Purpose.TRANSACTIONAL)  # sent at the sponsor's request
        invited = events_now(self._offset)
        if input.batch_id:
            await self._tell_thanks(input.batch_id)

        async def decided_within(days: int) -> bool:
            return await wait_until(invited + timedelta(days=days), unless=self._decided, offset=self._offset)

        if not await decided_within(input.reminder_days):
            await self._to_referee("invitation_reminder", Purpose.MARKETING)  # opted-in referees only
        if not await decided_within(input.inactive_days):
            await self._to_sponsor("inactive_referee")
        await decided_within(input.expire_days)

    async def _tell_thanks(self, batch_id: str) -> None:
        handle = workflow.get_external_workflow_handle(ids.referral_thanks(batch_id))
        try:
            await handle.signal("invitation_sent", self._input.referral_id)
        except Exception:
            workflow.logger.info("thank-you for batch %s already sent", batch_id)

    def _decided(self) -> bool:
        return self._conversion is not None or self._rejection is not None

    async def _end(self, status: str, reason: str, notify: bool = True) -> ReferralState:
        if notify:
            await self._to_sponsor("rejected_sponsor")  # with an invitation to refer someone else
        await self._record(status, reason)
        return self.state()

    async def _record(self, status: str, reason: str | None = None) -> None:
        self._status = status
        workflow.upsert_search_attributes(
            [REFERRAL_ID.value_set(self._input.referral_id), STEP.value_set(status)]
        )
        await workflow.execute_activity(
            record_referral_status,
            ReferralStatus(
                referral_id=self._input.referral_id,
                status=status,
                reason=reason,
                order_id=self._conversion.order_id if self._conversion else None,
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        )

    async def _to_referee(self, step: str, purpose: Purpose) -> None:
        await self._message(step, self._input.referee, purpose, self._input.channel)

    async def _to_sponsor(self, step: str) -> None:
        await self._message(step, self._input.sponsor, Purpose.TRANSACTIONAL, Channel.EMAIL)

    async def _message(self, step: str, contact: str, purpose: Purpose, channel: Channel) -> None:
        outcome = await send_message(
            scenario=REFERRAL_SCENARIO,
            subject_id=self._input.referral_id,
            step=step,
            template=f"referral/{step}",
            contact=contact,
            purpose=purpose,
            occurred_at=self._started,
            properties={
                "referral_id": self._input.referral_id,
                "sponsor_name": self._input.sponsor_name,
                "order_id": self._conversion.order_id if self._conversion else None,
                "reward_amount": self._input.reward_amount,
                "reward_currency": self._input.reward_currency,
                "reason": self._rejection.reason if self._rejection else None,
                "reward_code": self._reward_code,
            },
            channel=channel,
            clock_offset_seconds=self._input.clock_offset_seconds,
        )
        self._messages.append(f"{step}: {outcome.status.value}")
