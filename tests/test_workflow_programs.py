"""The program workflows' own logic against stub activities: referral, thank-you, gift card,
soft bounce, bulk send. Seconds each, no database: the stubs record what was asked and when."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from relance.models.broadcast import BatchResult, BroadcastInput, BroadcastState, Reschedule
from relance.models.gift_card import DEFAULT_TEMPLATES, GiftCardInput, GiftCardState, GiftCardUse
from relance.models.journey import Channel, DeliveryStatus, Purpose, SoftBounce, SoftBounceInput
from relance.models.referral import (
    Cancellation,
    Conversion,
    ReferralInput,
    ReferralState,
    Rejection,
    ThanksInput,
    ThankYouMode,
)
from relance.simulation.run import time_skipping
from relance.workflows.bounce import SoftBounceWorkflow
from relance.workflows.broadcast import BroadcastWorkflow
from relance.workflows.gift_card import GiftCardWorkflow
from relance.workflows.referral import ReferralWorkflow
from relance.workflows.referral_thanks import ReferralThanksWorkflow
from tests.helpers.stubs import CARD_VALIDITY, Stubs
from tests.helpers.timing import DAY, close_to

HOUR = timedelta(hours=1)


def referral(**fields: object) -> ReferralInput:
    values: dict[str, object] = {
        "referral_id": "r-1",
        "sponsor": "s-1",
        "referee": "f-1",
        "channel": Channel.EMAIL,
        "sponsor_name": "Sam",
        "reward": "promo_generated",
        "reward_reminder_days": 0,
        "refer_again_days": 0,
    }
    return ReferralInput.model_validate(values | fields)


def statuses(stubs: Stubs) -> list[tuple[str, str | None, str | None]]:
    return [
        (c.payload.status, c.payload.reason, c.payload.order_id)
        for c in stubs.named("record_referral_status")
    ]


async def start_referral(env: WorkflowEnvironment, queue: str, input: ReferralInput) -> WorkflowHandle:
    return await env.client.start_workflow(
        ReferralWorkflow.run, input, id=f"referral:{input.referral_id}", task_queue=queue
    )


# --- referrals -----------------------------------------------------------------------------


@pytest.mark.feature("R-05")
@pytest.mark.feature("R-07")
@pytest.mark.feature("R-09")
async def test_a_referee_who_never_buys_is_invited_reminded_then_the_referral_lapses(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    t0 = await time_env.get_current_time()
    state: ReferralState = await (await start_referral(time_env, stub_queue, referral())).result()

    sent = stubs.named("deliver_program_message")
    assert [(c.payload.message, c.payload.contact, c.payload.purpose) for c in sent] == [
        ("invitation", "f-1", Purpose.TRANSACTIONAL),  # at the sponsor's request
        ("invitation_reminder", "f-1", Purpose.MARKETING),  # so only with the referee's opt-in
        ("inactive_referee", "s-1", Purpose.TRANSACTIONAL),
    ]
    assert [c.payload.properties["sponsor_name"] for c in sent] == ["Sam"] * 3
    for call, after in zip(sent, (timedelta(0), 7 * DAY, 14 * DAY), strict=True):
        assert close_to(call.at, t0 + after), call.payload.message
    assert statuses(stubs) == [("abandoned", "the referee did not buy in time", None)]
    assert close_to(stubs.named("record_referral_status")[0].at, t0 + 90 * DAY)
    assert state.status == "abandoned"


@pytest.mark.feature("R-07")
@pytest.mark.feature("R-10")
@pytest.mark.feature("R-11")
@pytest.mark.feature("R-12")
@pytest.mark.feature("R-13")
@pytest.mark.feature("R-14")
@pytest.mark.feature("R-16")
@pytest.mark.parametrize("reward_used", [False, True])
async def test_a_conversion_is_reconciled_validated_after_the_window_then_rewarded(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str, reward_used: bool
) -> None:
    stubs.reward_used = reward_used
    t0 = await time_env.get_current_time()
    input = referral(reward_reminder_days=30, refer_again_days=60)
    handle = await start_referral(time_env, stub_queue, input)
    await time_env.sleep(3 * DAY)
    await handle.signal(ReferralWorkflow.converted, Conversion(order_id="O-1", at=t0 + 3 * DAY))
    await handle.signal(ReferralWorkflow.converted, Conversion(order_id="O-2", at=t0 + 3 * DAY))  # one reward
    await time_env.sleep(14 * DAY)  # the 15-day window is still open
    assert statuses(stubs) == [("reconciled", None, "O-1")]
    state: ReferralState = await handle.result()

    reminder = [("reward_reminder", 48 * DAY)] if not reward_used else []
    expected = [
        ("invitation", timedelta(0)),
        ("reconciled_sponsor", 3 * DAY),
        ("reconciled_referee", 3 * DAY),
        ("validated_referee", 18 * DAY),
        ("reward_sponsor", 18 * DAY),
        *reminder,
        ("refer_again", 78 * DAY),  # counted from the reward, not from the reminder
    ]
    assert [s for s, _ in stubs.deliveries()] == [s for s, _ in expected]  # no invitation reminder
    for (step, at), (_, after) in zip(stubs.deliveries(), expected, strict=True):
        assert close_to(at, t0 + after), step
    assert statuses(stubs) == [
        ("reconciled", None, "O-1"),
        ("validated", None, "O-1"),
        ("rewarded", None, "O-1"),
    ]
    [given] = stubs.named("assign_promo_code")
    assert (given.payload.key, given.payload.contact, given.payload.mode, given.payload.prefix) == (
        "reward-r-1",
        "s-1",
        "generated",
        "THANKS",
    )
    [used] = stubs.named("promo_code_used")
    assert used.payload.code == "THANKS-0001" and close_to(used.payload.since, t0 + 18 * DAY)
    assert (state.status, state.order_id, state.reward_code) == ("rewarded", "O-1", "THANKS-0001")


@pytest.mark.feature("R-11")
@pytest.mark.feature("R-15")
async def test_a_return_in_the_validation_window_abandons_the_referral(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    bought = Conversion(order_id="O-1", at=t0)  # came through a shared link: no invitation
    handle = await start_referral(time_env, stub_queue, referral(conversion=bought))
    await time_env.sleep(5 * DAY)
    await handle.signal(
        ReferralWorkflow.cancelled, Cancellation(order_id="O-9", at=t0 + 5 * DAY)
    )  # not this one
    await time_env.sleep(DAY)
    assert statuses(stubs) == [("reconciled", None, "O-1")]
    await handle.signal(ReferralWorkflow.cancelled, Cancellation(order_id="O-1", at=t0 + 6 * DAY))
    state: ReferralState = await handle.result()

    assert [s for s, _ in stubs.deliveries()] == [
        "reconciled_sponsor",
        "reconciled_referee",
        "rejected_sponsor",
    ]
    assert close_to(stubs.deliveries()[-1][1], t0 + 6 * DAY)
    assert statuses(stubs)[-1] == ("abandoned", "order O-1 was returned or cancelled", "O-1")
    assert stubs.named("assign_promo_code") == [] and stubs.named("issue_gift_card") == []
    assert state.status == "abandoned"


@pytest.mark.feature("R-15")
async def test_an_operator_rejects_a_referral_until_it_is_validated(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    pending = await start_referral(time_env, stub_queue, referral())
    await time_env.sleep(2 * DAY)
    await pending.execute_update(ReferralWorkflow.reject, Rejection(reason="same household"))
    rejected: ReferralState = await pending.result()

    late = await start_referral(
        time_env,
        stub_queue,
        referral(referral_id="r-2", conversion=Conversion(order_id="O-1", at=t0), refer_again_days=60),
    )
    await time_env.sleep(20 * DAY)  # validated and rewarded; waiting to invite the sponsor again
    with pytest.raises(WorkflowUpdateFailedError):
        await late.execute_update(ReferralWorkflow.reject, Rejection(reason="too late"))

    assert (rejected.status, rejected.reason) == ("rejected", "same household")
    first = [c for c in stubs.named("record_referral_status") if c.payload.referral_id == "r-1"]
    assert [(c.payload.status, c.payload.reason) for c in first] == [("rejected", "same household")]
    assert close_to(first[0].at, t0 + 2 * DAY)
    to_sponsor = [
        c.payload.message for c in stubs.named("deliver_program_message") if c.payload.subject == "r-1"
    ]
    assert to_sponsor == ["invitation", "rejected_sponsor"]


@pytest.mark.feature("R-12")
async def test_a_gift_card_reward_is_a_card_workflow_of_its_own(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    input = referral(reward="gift_card", reward_amount=15.0, conversion=Conversion(order_id="O-1", at=t0))
    state: ReferralState = await (await start_referral(time_env, stub_queue, input)).result()
    # The referral is over; the card lives its own year (parent close policy: abandon).
    child = time_env.client.get_workflow_handle_for(GiftCardWorkflow.run, "gift-card:reward-r-1")
    async with time_skipping(time_env.client):  # a handle not from start_workflow does not skip by itself
        card: GiftCardState = await child.result()

    [issued] = stubs.named("issue_gift_card")
    assert (issued.payload.key, issued.payload.contact, issued.payload.amount_cents) == (
        "reward-r-1",
        "s-1",
        1500,
    )
    assert close_to(issued.at, t0 + 15 * DAY)  # once the validation window is over
    card_messages = [
        (c.payload.message, c.payload.contact)
        for c in stubs.named("deliver_program_message")
        if c.payload.subject == "reward-r-1"
    ]
    assert card_messages == [("delivery", "s-1"), ("expiry_warning", "s-1"), ("expired", "s-1")]
    assert card.status == "expired"
    assert state.status == "rewarded" and state.reward_code is None


@pytest.mark.feature("R-08")
@pytest.mark.parametrize(
    ("mode", "signalled", "after"),
    [
        (ThankYouMode.IMMEDIATELY, [], timedelta(0)),
        (ThankYouMode.NEXT_DAY, [], 24 * HOUR),
        (ThankYouMode.AFTER_INVITATIONS, ["r-1", "r-2"], 2 * HOUR),  # when the last one is out
        (ThankYouMode.AFTER_INVITATIONS, ["r-1"], 6 * HOUR),  # one is stuck: after the wait
    ],
)
async def test_the_sponsor_is_thanked_once_per_batch_when_the_mode_says(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
    mode: ThankYouMode,
    signalled: list[str],
    after: timedelta,
) -> None:
    t0 = await time_env.get_current_time()
    input = ThanksInput(
        batch_id="b-1",
        sponsor="s-1",
        sponsor_name="Sam",
        referral_ids=["r-1", "r-2"],
        referees=["Ana", "Bo"],
        mode=mode,
        wait_hours=6,
    )
    handle = await time_env.client.start_workflow(
        ReferralThanksWorkflow.run, input, id="referral-thanks:b-1", task_queue=stub_queue
    )
    await time_env.sleep(2 * HOUR)
    for referral_id in signalled:
        await handle.signal(ReferralThanksWorkflow.invitation_sent, referral_id)
    outcome = await handle.result()
    seen = await handle.query(ReferralThanksWorkflow.invitations_sent)

    [thanks] = stubs.named("deliver_program_message")
    assert (thanks.payload.message, thanks.payload.contact, thanks.payload.purpose) == (
        "thank_you",
        "s-1",
        Purpose.TRANSACTIONAL,
    )
    assert thanks.payload.properties == {
        "sponsor_name": "Sam",
        "referees": ["Ana", "Bo"],
        "invited": 2,
    }
    assert close_to(thanks.at, t0 + after)
    assert (outcome, seen) == ("sent", signalled)


# --- gift cards ----------------------------------------------------------------------------


async def start_card(env: WorkflowEnvironment, queue: str) -> WorkflowHandle:
    """A 20 EUR card for h-1, as the API issues it."""
    input = GiftCardInput(
        key="k-1", contact="h-1", amount_cents=2000, currency="EUR", templates=DEFAULT_TEMPLATES
    )
    return await env.client.start_workflow(GiftCardWorkflow.run, input, id="gift-card:k-1", task_queue=queue)


@pytest.mark.feature("G-01")
@pytest.mark.feature("G-05")
@pytest.mark.feature("G-06")
async def test_an_unspent_card_is_warned_seven_days_before_it_expires(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    handle = await start_card(time_env, stub_queue)
    state: GiftCardState = await handle.result()

    expected = [
        ("delivery", timedelta(0)),
        ("expiry_warning", CARD_VALIDITY - 7 * DAY),
        ("expired", CARD_VALIDITY),
    ]
    assert [s for s, _ in stubs.deliveries()] == [s for s, _ in expected]
    for (step, at), (_, after) in zip(stubs.deliveries(), expected, strict=True):
        assert close_to(at, t0 + after), step
    templates = [c.payload.template for c in stubs.named("deliver_program_message")]
    assert templates == ["giftcard/delivery", "giftcard/expiry_warning", "giftcard/expired"]
    [expired] = stubs.named("expire_gift_card")
    assert close_to(expired.at, t0 + CARD_VALIDITY)
    assert state.status == "expired" and state.card is not None and state.card.status == "expired"


@pytest.mark.feature("G-04")
async def test_each_use_tells_the_balance_left_until_the_card_is_empty(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    handle = await start_card(time_env, stub_queue)
    await time_env.sleep(10 * DAY)
    await handle.signal(GiftCardWorkflow.used, GiftCardUse(amount_cents=500, at=t0 + 10 * DAY))
    await time_env.sleep(DAY)
    assert (await handle.query(GiftCardWorkflow.state)).status == "active"
    await handle.signal(GiftCardWorkflow.used, GiftCardUse(amount_cents=5000, at=t0 + 11 * DAY))  # over
    state: GiftCardState = await handle.result()

    assert [c.payload.balance_cents for c in stubs.named("record_gift_card_balance")] == [1500, 0]
    used = [c for c in stubs.named("deliver_program_message") if c.payload.message == "used"]
    assert [c.payload.properties["balance"] for c in used] == [15.0, 0.0]
    assert close_to(used[0].at, t0 + 10 * DAY)
    assert [s for s, _ in stubs.deliveries()] == ["delivery", "used", "used"]  # no warning: it is spent
    assert stubs.named("expire_gift_card") == []
    assert (state.status, state.messages) == ("used", ["delivery: sent", "used: sent", "used: sent"])


# --- soft bounces --------------------------------------------------------------------------


async def start_bounces(env: WorkflowEnvironment, queue: str) -> tuple[WorkflowHandle, datetime]:
    """Started by the first bounce notification (signal-with-start), as the bounce handler does."""
    t0 = await env.get_current_time()
    handle = await env.client.start_workflow(
        SoftBounceWorkflow.run,
        SoftBounceInput(delivery_key="d-1", first_sent_at=t0),
        id="soft-bounce:d-1",
        task_queue=queue,
        start_signal="bounced",
        start_signal_args=[SoftBounce(delivery_key="d-1", at=t0)],
    )
    return handle, t0


@pytest.mark.feature("D-08")
async def test_a_soft_bounce_is_tried_three_times_within_24_hours(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    handle, t0 = await start_bounces(time_env, stub_queue)
    await time_env.sleep(13 * HOUR)
    second = SoftBounce(delivery_key="d-1:2", at=t0 + 13 * HOUR)
    await handle.signal(SoftBounceWorkflow.bounced, second)
    await handle.signal(SoftBounceWorkflow.bounced, second)  # the provider says it twice
    assert await handle.query(SoftBounceWorkflow.attempts_bounced) == 2
    await time_env.sleep(12 * HOUR)
    await handle.signal(SoftBounceWorkflow.bounced, SoftBounce(delivery_key="d-1:3", at=t0 + 25 * HOUR))
    reason = await handle.result()

    resends = stubs.named("resend_message")
    assert [(c.payload.delivery_key, c.payload.attempt) for c in resends] == [("d-1", 2), ("d-1", 3)]
    assert close_to(resends[0].at, t0 + 12 * HOUR) and close_to(resends[1].at, t0 + 24 * HOUR)
    assert reason == "soft-bounced 3 times within 24 hours: no more attempts"
    assert [c.payload.reason for c in stubs.named("end_soft_bounces")] == [reason]


@pytest.mark.feature("D-08")
@pytest.mark.parametrize(
    ("resend_status", "reason"),
    [
        (DeliveryStatus.SENT, "attempt 2 was not reported bounced"),  # delivered this time
        (DeliveryStatus.SKIPPED, "attempt 2 skipped: contact unsubscribed"),
    ],
)
async def test_the_attempts_stop_when_a_retry_is_not_bounced_or_not_sent(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str, resend_status: DeliveryStatus, reason: str
) -> None:
    stubs.resend_status = resend_status
    handle, _ = await start_bounces(time_env, stub_queue)
    assert await handle.result() == reason

    assert [c.payload.attempt for c in stubs.named("resend_message")] == [2]
    assert [c.payload.reason for c in stubs.named("end_soft_bounces")] == [reason]


# --- bulk sends ----------------------------------------------------------------------------


async def start_broadcast(
    env: WorkflowEnvironment, queue: str, delay: timedelta, **fields: object
) -> WorkflowHandle:
    t0 = await env.get_current_time()
    input = BroadcastInput.model_validate(
        {"broadcast_id": "b-1", "send_at": t0 + delay, "batch_size": 2, **fields}
    )
    return await env.client.start_workflow(BroadcastWorkflow.run, input, id="broadcast:b-1", task_queue=queue)


@pytest.mark.feature("B-02")
@pytest.mark.feature("B-05")
async def test_a_send_waits_the_safety_delay_then_goes_in_batches_and_reports(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    stubs.recipients = 3
    stubs.batches = [
        BatchResult(last_seq=2, processed=2, done=False),
        BatchResult(last_seq=3, processed=1, done=True),
    ]
    t0 = await time_env.get_current_time()
    handle = await start_broadcast(time_env, stub_queue, timedelta(minutes=15))
    await time_env.sleep(timedelta(minutes=10))
    assert stubs.named("snapshot_audience") == []
    state: BroadcastState = await handle.result()

    [snapshot] = stubs.named("snapshot_audience")
    assert close_to(snapshot.at, t0 + timedelta(minutes=15))
    assert [c.payload.after_seq for c in stubs.named("send_batch")] == [0, 2]
    assert (state.status, state.recipients, state.processed) == ("completed", 3, 3)
    assert state.report is not None and state.report.sent == 3


@pytest.mark.feature("B-02")
@pytest.mark.feature("B-03")
async def test_a_scheduled_send_can_be_moved_or_cancelled_until_it_starts(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    t0 = await time_env.get_current_time()
    handle = await start_broadcast(time_env, stub_queue, timedelta(minutes=15))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(BroadcastWorkflow.reschedule, Reschedule(at=t0 - HOUR))
    moved: BroadcastState = await handle.execute_update(
        BroadcastWorkflow.reschedule, Reschedule(at=t0 + 2 * HOUR)
    )
    await time_env.sleep(HOUR)  # past the first time: the new one holds
    assert stubs.named("snapshot_audience") == []
    await handle.execute_update(BroadcastWorkflow.cancel)
    state: BroadcastState = await handle.result()

    assert close_to(moved.send_at, t0 + 2 * HOUR)
    assert [c.payload for c in stubs.named("set_broadcast_status")] == [["b-1", "cancelled"]]
    assert stubs.named("snapshot_audience") == [] and stubs.named("send_batch") == []
    assert state.status == "cancelled"


async def run_chain(env: WorkflowEnvironment, handle: WorkflowHandle) -> list[str]:
    """The run ids of a workflow, following continue-as-new from its first run."""
    runs = [handle.first_execution_run_id]
    while True:
        history = await env.client.get_workflow_handle(handle.id, run_id=runs[-1]).fetch_history()
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return runs
        runs.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


@pytest.mark.feature("J-09")
async def test_a_long_send_continues_as_new_and_deferred_recipients_get_a_pass_of_their_own(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    stubs.recipients = 5
    t0 = await time_env.get_current_time()
    morning = t0 + 9 * HOUR
    stubs.batches = [
        BatchResult(last_seq=2, processed=2, done=False),
        BatchResult(last_seq=4, processed=2, done=False),
        BatchResult(last_seq=5, processed=1, done=True, next_retry=morning),  # SMS at night
        BatchResult(last_seq=5, processed=0, done=True),
    ]
    handle = await start_broadcast(time_env, stub_queue, timedelta(minutes=1), batches_per_run=1)
    state: BroadcastState = await handle.result()  # follows the continued runs
    runs = await run_chain(time_env, handle)

    batches = stubs.named("send_batch")
    assert [(c.payload.after_seq, c.payload.deferred) for c in batches] == [
        (0, False),
        (2, False),
        (4, False),
        (0, True),
    ]
    assert close_to(batches[-1].at, morning)
    assert len(stubs.named("snapshot_audience")) == 1  # taken once, carried over
    assert len(runs) == 3  # one batch per run before it continues: fresh histories
    assert (state.status, state.recipients, state.processed) == ("completed", 5, 5)
