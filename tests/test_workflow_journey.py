"""JourneyWorkflow's own logic against stub activities: timing, skips, signals, deferrals, the query.

No database and no channel: the stubs record what the workflow asked and when (the time-skipping
server's clock), so months of journey run in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from relance.models.journey import (
    Anchor,
    CancelRequest,
    Channel,
    DeliveryRequest,
    DeliveryStatus,
    DomainEvent,
    JourneyInput,
    JourneySpec,
    JourneyState,
    StepOutcome,
    StepSpec,
    TriggerEvent,
)
from relance.workflows.journey import JourneyWorkflow
from tests.helpers.stubs import Stubs
from tests.helpers.timing import DAY, close_to

HOUR = timedelta(hours=1)
WORKFLOW_ID = "journey:shop:thanks:c-1:A-1"


def step(
    id: str,
    delay: timedelta,
    after: Anchor = Anchor.PREVIOUS,
    channel: Channel = Channel.EMAIL,
    unless: tuple[str, ...] = (),
    enabled: bool = True,
) -> StepSpec:
    return StepSpec(
        id=id,
        channel=channel,
        template=f"shop/{id}",
        delay_seconds=int(delay.total_seconds()),
        after=after,
        unless=list(unless),
        enabled=enabled,
    )


def journey(
    t0: datetime,
    *steps: StepSpec,
    exit_on: list[str] | None = None,
    due_at: dict[str, datetime] | None = None,
) -> JourneyInput:
    return JourneyInput(
        spec=JourneySpec(
            scenario="shop", journey="thanks", version="v1", exit_on=exit_on or [], steps=list(steps)
        ),
        contact="c-1",
        trigger=TriggerEvent(event_id=1, type="purchase", ref="A-1", occurred_at=t0),
        due_at=due_at or {},
    )


async def start(env: WorkflowEnvironment, task_queue: str, input: JourneyInput) -> WorkflowHandle:
    """Signal-with-start, as ingestion does it."""
    return await env.client.start_workflow(
        JourneyWorkflow.run,
        input,
        id=WORKFLOW_ID,
        task_queue=task_queue,
        start_signal="trigger",
        start_signal_args=[input.trigger],
    )


def skips(stubs: Stubs) -> list[tuple[str, str, datetime]]:
    """(step, reason, time) of every message the workflow asked to record as not sent."""
    return [(r.step.id, r.reason, r.at) for c in stubs.named("skip_messages") for r in c.payload]


def ends(stubs: Stubs) -> list[tuple[str, str | None, datetime]]:
    return [(c.payload.status, c.payload.reason, c.payload.at) for c in stubs.named("end_journey")]


INVITE_AND_REMINDER = (step("invite", 3 * DAY, Anchor.TRIGGER), step("reminder", 7 * DAY))


@pytest.mark.feature("J-02")
async def test_delays_count_from_the_trigger_or_from_the_previous_send(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    def late_invite(request: DeliveryRequest) -> StepOutcome:
        # The delivery may take place after the decision (commercial-pressure arbitration):
        # "previous" counts from the send itself.
        at = request.at + HOUR if request.step.id == "invite" else request.at
        return StepOutcome(step=request.step.id, status=DeliveryStatus.SENT, at=at)

    stubs.deliver = late_invite
    t0 = await time_env.get_current_time()
    steps = (*INVITE_AND_REMINDER, step("survey", 20 * DAY, Anchor.TRIGGER))
    handle = await start(time_env, stub_queue, journey(t0, *steps))
    await time_env.sleep(4 * DAY)
    assert [s for s, _ in stubs.deliveries()] == ["invite"]
    state: JourneyState = await handle.result()

    (invite, invite_at), (reminder, reminder_at), (survey, survey_at) = stubs.deliveries()
    assert (invite, reminder, survey) == ("invite", "reminder", "survey")
    assert close_to(invite_at, t0 + 3 * DAY)
    assert close_to(reminder_at, t0 + 3 * DAY + HOUR + 7 * DAY)
    assert close_to(survey_at, t0 + 20 * DAY)
    assert stubs.named("skip_messages") == []
    assert state.status == "completed"
    assert [(status, reason) for status, reason, _ in ends(stubs)] == [("completed", None)]


@pytest.mark.feature("J-02")
async def test_a_message_timed_from_a_date_before_the_trigger_is_skipped(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    t0 = await time_env.get_current_time()
    due = {"eve": t0 - HOUR, "morning": t0 + 2 * DAY}  # computed at ingestion from a booking date
    steps = (step("eve", timedelta(0), Anchor.TRIGGER), step("morning", timedelta(0), Anchor.TRIGGER))
    handle = await start(time_env, stub_queue, journey(t0, *steps, due_at=due))
    await handle.result()

    assert [(s, reason) for s, reason, _ in skips(stubs)] == [
        ("eve", f"due {due['eve'].isoformat()}, before the trigger")
    ]
    [(morning, at)] = stubs.deliveries()
    assert morning == "morning" and close_to(at, t0 + 2 * DAY)


@pytest.mark.feature("R-03")
async def test_unless_skips_a_message_once_the_named_event_was_seen(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    steps = (
        step("invite", DAY, Anchor.TRIGGER),
        step("reminder", 7 * DAY, unless=("referral_sent",)),
        step("survey", DAY, unless=("complaint",)),  # another event: still goes
    )
    handle = await start(time_env, stub_queue, journey(t0, *steps))
    await time_env.sleep(2 * DAY)
    await handle.signal(JourneyWorkflow.event, DomainEvent(type="referral_sent", occurred_at=t0 + 2 * DAY))
    state: JourneyState = await handle.result()

    assert [s for s, _ in stubs.deliveries()] == ["invite", "survey"]
    [(skipped, reason, at)] = skips(stubs)
    assert (skipped, reason) == ("reminder", "contact sent 'referral_sent' since the journey started")
    assert close_to(at, t0 + 8 * DAY)  # decided when it was due, not when the event came
    assert [(o.step, o.status) for o in state.steps_done] == [
        ("invite", DeliveryStatus.SENT),
        ("reminder", DeliveryStatus.SKIPPED),
        ("survey", DeliveryStatus.SENT),
    ]


async def test_a_disabled_message_is_skipped_and_the_next_one_still_goes(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    t0 = await time_env.get_current_time()
    steps = (step("invite", DAY, Anchor.TRIGGER, enabled=False), step("reminder", DAY))
    await (await start(time_env, stub_queue, journey(t0, *steps))).result()

    assert [(s, reason) for s, reason, _ in skips(stubs)] == [("invite", "message disabled")]
    [(reminder, at)] = stubs.deliveries()
    assert reminder == "reminder" and close_to(at, t0 + 2 * DAY)  # counted from the skip


@pytest.mark.feature("J-03")
async def test_an_exit_event_ends_the_journey_and_skips_what_remains(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    handle = await start(time_env, stub_queue, journey(t0, *INVITE_AND_REMINDER, exit_on=["unsubscribed"]))
    await time_env.sleep(DAY)
    await handle.signal(JourneyWorkflow.event, DomainEvent(type="opened", occurred_at=t0 + DAY))
    assert (await handle.query(JourneyWorkflow.state)).status == "running"  # not an exit event
    await handle.signal(JourneyWorkflow.event, DomainEvent(type="unsubscribed", occurred_at=t0 + DAY))
    state: JourneyState = await handle.result()

    assert stubs.deliveries() == []
    assert [(s, reason) for s, reason, _ in skips(stubs)] == [
        ("invite", "exit event 'unsubscribed'"),
        ("reminder", "exit event 'unsubscribed'"),
    ]
    [(status, reason, at)] = ends(stubs)
    assert (status, reason) == ("exited", "exit event 'unsubscribed'") and close_to(at, t0 + DAY)
    assert (state.status, state.end_reason) == ("exited", "exit event 'unsubscribed'")


@pytest.mark.feature("J-03")
async def test_the_cancel_signal_skips_what_remains_with_its_reason(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    handle = await start(time_env, stub_queue, journey(t0, *INVITE_AND_REMINDER))
    await time_env.sleep(4 * DAY)
    await handle.signal(JourneyWorkflow.cancel, CancelRequest(reason="asked the shop by phone"))
    await handle.signal(JourneyWorkflow.cancel, CancelRequest(reason="a second time"))  # the first one holds
    state: JourneyState = await handle.result()

    assert [s for s, _ in stubs.deliveries()] == ["invite"]
    [(skipped, reason, at)] = skips(stubs)
    assert (skipped, reason) == ("reminder", "cancelled: asked the shop by phone")
    assert close_to(at, t0 + 4 * DAY)  # at once, not when the reminder was due
    assert [(status, reason) for status, reason, _ in ends(stubs)] == [
        ("cancelled", "cancelled: asked the shop by phone")
    ]
    assert state.status == "cancelled"


def deferred_once(until_after: timedelta) -> Callable[[DeliveryRequest], StepOutcome]:
    """The first ask for each message is deferred (an SMS outside its hours), the next one sent."""
    asked: set[str] = set()

    def deliver(request: DeliveryRequest) -> StepOutcome:
        if request.step.id in asked:
            return StepOutcome(step=request.step.id, status=DeliveryStatus.SENT, at=request.at)
        asked.add(request.step.id)
        return StepOutcome(
            step=request.step.id,
            status=DeliveryStatus.DEFERRED,
            at=request.at,
            reason="outside the SMS hours",
            until=request.at + until_after,
        )

    return deliver


async def sms_deferred_for_the_night(
    env: WorkflowEnvironment, stubs: Stubs, queue: str
) -> tuple[datetime, WorkflowHandle]:
    """An SMS due an hour after the trigger, deferred by 10 hours; 3 hours in, it is waiting."""
    stubs.deliver = deferred_once(10 * HOUR)
    t0 = await env.get_current_time()
    handle = await start(env, queue, journey(t0, step("sms", HOUR, Anchor.TRIGGER, channel=Channel.SMS)))
    await env.sleep(3 * HOUR)
    return t0, handle


@pytest.mark.feature("D-05")
async def test_a_deferred_message_waits_until_its_time_then_is_asked_again(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    t0, handle = await sms_deferred_for_the_night(time_env, stubs, stub_queue)
    waiting: JourneyState = await handle.query(JourneyWorkflow.state)
    state: JourneyState = await handle.result()

    first, second = stubs.named("deliver_message")
    assert close_to(first.at, t0 + HOUR) and close_to(second.at, t0 + 11 * HOUR)
    assert (first.payload.deferrals, second.payload.deferrals) == (0, 1)
    assert first.payload.idempotency_key == second.payload.idempotency_key  # one message, asked twice
    assert waiting.next_send is not None and waiting.next_send.step == "sms"
    assert close_to(waiting.next_send.at, t0 + 11 * HOUR)
    assert [o.status for o in waiting.steps_done] == [DeliveryStatus.DEFERRED]
    assert [o.status for o in state.steps_done] == [DeliveryStatus.DEFERRED, DeliveryStatus.SENT]
    assert state.status == "completed"


@pytest.mark.feature("J-03")
async def test_a_cancel_during_a_deferral_skips_the_message(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0, handle = await sms_deferred_for_the_night(time_env, stubs, stub_queue)
    await handle.signal(JourneyWorkflow.cancel, CancelRequest(reason="order cancelled"))
    state: JourneyState = await handle.result()

    assert len(stubs.named("deliver_message")) == 1
    [(skipped, reason, at)] = skips(stubs)
    assert (skipped, reason) == ("sms", "cancelled: order cancelled") and close_to(at, t0 + 3 * HOUR)
    assert state.status == "cancelled"


@pytest.mark.feature("J-01")
async def test_a_repeated_trigger_is_counted_not_run_again(
    time_env: WorkflowEnvironment, stubs: Stubs, stub_queue: str
) -> None:
    t0 = await time_env.get_current_time()
    input = journey(t0, *INVITE_AND_REMINDER)
    first = await start(time_env, stub_queue, input)
    again = await start(time_env, stub_queue, input)  # signal-with-start on a running journey: a signal
    assert again.result_run_id == first.result_run_id
    state: JourneyState = await first.result()

    assert state.duplicate_triggers == 1
    assert [s for s, _ in stubs.deliveries()] == ["invite", "reminder"]
    assert len(stubs.named("end_journey")) == 1


@pytest.mark.feature("J-04")
async def test_the_state_query_tells_the_current_step_next_send_and_steps_done(
    time_env: WorkflowEnvironment,
    stubs: Stubs,
    stub_queue: str,
) -> None:
    t0 = await time_env.get_current_time()
    handle = await start(time_env, stub_queue, journey(t0, *INVITE_AND_REMINDER))

    state: JourneyState = await handle.query(JourneyWorkflow.state)
    assert (state.status, state.current_step, state.steps_done) == ("running", "invite", [])
    assert (state.scenario, state.journey, state.version, state.contact) == (
        "shop",
        "thanks",
        "v1",
        "c-1",
    )
    assert state.next_send is not None and state.next_send.step == "invite"
    assert close_to(state.next_send.at, t0 + 3 * DAY)

    await time_env.sleep(4 * DAY)
    state = await handle.query(JourneyWorkflow.state)
    assert state.current_step == "reminder"
    assert [(o.step, o.status) for o in state.steps_done] == [("invite", DeliveryStatus.SENT)]
    assert state.next_send is not None and state.next_send.step == "reminder"
    assert close_to(state.next_send.at, state.steps_done[0].at + 7 * DAY)

    result: JourneyState = await handle.result()
    state = await handle.query(JourneyWorkflow.state)  # a closed journey still answers

    assert (state.status, state.current_step, state.next_send) == ("completed", None, None)
    assert [o.step for o in state.steps_done] == ["invite", "reminder"]
    assert result == state
