"""GiftCardWorkflow: one e-gift card from issue to used or expired (G-01, G-04, G-05, G-06).

Issue the card and send it; then, until its balance is spent, tell the holder
what each use left; seven days before the end of its validity (a year by
default) remind them of the balance; at the end, tell them it has expired.
All dates count from the card's issue date.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from relance.models.gift_card import (
        CardRecord,
        ExpireRequest,
        GiftCardInput,
        GiftCardState,
        GiftCardUse,
        IssueRequest,
        UseRequest,
        expire_gift_card,
        issue_gift_card,
        record_gift_card_balance,
    )
    from relance.models.journey import Purpose
    from relance.workflows import ids
    from relance.workflows.common import (
        BOOKKEEPING_TIMEOUT,
        DELIVERY_RETRY,
        PROVIDER_TIMEOUT,
        events_now,
        wait_until,
    )
    from relance.workflows.messages import send_message
    from relance.workflows.search_attributes import GIFT_CARD_ID, STEP

GIFT_CARD_SCENARIO = "gift_card"  # the ledger's scenario name for gift-card messages


@workflow.defn
class GiftCardWorkflow:
    @workflow.init
    def __init__(self, input: GiftCardInput) -> None:
        self._input = input
        self._offset = timedelta(seconds=input.clock_offset_seconds)
        self._uses: list[GiftCardUse] = []
        self._status = "issuing"
        self._card: CardRecord | None = None
        self._messages: list[str] = []

    @workflow.signal
    def used(self, use: GiftCardUse) -> None:
        self._uses.append(use)

    @workflow.query
    def state(self) -> GiftCardState:
        return GiftCardState(
            key=ids.gift_card_key(workflow.info().workflow_id),
            status=self._status,
            card=self._card,
            messages=self._messages,
        )

    @workflow.run
    async def run(self, input: GiftCardInput) -> GiftCardState:
        card = await workflow.execute_activity(
            issue_gift_card,
            IssueRequest(
                key=input.key,
                contact=input.contact,
                amount_cents=input.amount_cents,
                currency=input.currency,
                at=events_now(self._offset),
                validity_months=input.validity_months,
            ),
            start_to_close_timeout=PROVIDER_TIMEOUT,
            retry_policy=DELIVERY_RETRY,
        )
        self._card = card
        self._set_status("active")
        await self._message(input, "delivery")
        warn_at = card.expires_at - timedelta(days=input.warning_days)
        warned, handled = False, 0
        while True:
            deadline = card.expires_at if warned else warn_at

            def used_again(seen: int = handled) -> bool:
                return len(self._uses) > seen

            # Always armed, as cards always waited: a use already in still starts (and cancels) a timer.
            if not await wait_until(deadline, unless=used_again, offset=self._offset, always_arm=True):
                if not warned:
                    warned = True
                    await self._message(input, "expiry_warning")
                    continue
                self._card = card = await workflow.execute_activity(
                    expire_gift_card,
                    ExpireRequest(key=input.key, at=events_now(self._offset)),
                    start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                )
                self._set_status("expired")
                await self._message(input, "expired")
                break
            use = self._uses[handled]
            handled += 1
            balance = max(0, card.balance_cents - use.amount_cents)
            self._card = card = await workflow.execute_activity(
                record_gift_card_balance,
                UseRequest(key=input.key, balance_cents=balance, at=use.at),
                start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            )
            await self._message(input, "used")  # the template says "fully used" or the balance left
            if balance == 0:
                self._set_status("used")
                break
        return self.state()

    async def _message(self, input: GiftCardInput, step: str) -> None:
        card = self._card
        assert card is not None
        outcome = await send_message(
            scenario=GIFT_CARD_SCENARIO,
            subject_id=input.key,
            step=step,
            template=input.templates[step],
            contact=input.contact,
            purpose=Purpose.TRANSACTIONAL,  # about something the holder owns: no opt-in needed
            occurred_at=card.issued_at,
            properties={
                "code": card.code,
                "url": card.url,
                "currency": card.currency,
                "amount": card.amount_cents / 100,
                "balance": card.balance_cents / 100,
                "expires_on": card.expires_at.date().isoformat(),  # UTC date: no tzdata here
            },
            attempt=len(self._messages),
            clock_offset_seconds=input.clock_offset_seconds,
        )
        self._messages.append(f"{step}: {outcome.status.value}")

    def _set_status(self, status: str) -> None:
        self._status = status
        workflow.upsert_search_attributes(
            [GIFT_CARD_ID.value_set(workflow.info().workflow_id), STEP.value_set(status)]
        )
