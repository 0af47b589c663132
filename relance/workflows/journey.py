"""JourneyWorkflow: one contact going through one journey of a scenario.

It reads like the scenario: for each message, wait until it is due (relative
to the trigger or to the previous message), then send it or record why not.
Cancellation and exit events end the wait early; every message that will not
go out is still written to the ledger with its reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

# Passed through: the sandbox would otherwise rebuild these pydantic classes for
# every journey (milliseconds of CPU each); they hold no state.
with workflow.unsafe.imports_passed_through():
    from relance.models.journey import (
        Anchor,
        CancelRequest,
        DeliveryRequest,
        DeliveryStatus,
        DomainEvent,
        JourneyEnd,
        JourneyInput,
        JourneyState,
        NextSend,
        SkipRequest,
        StepOutcome,
        StepSpec,
        TriggerEvent,
        deliver_message,
        end_journey,
        skip_messages,
    )
    from relance.workflows.common import BOOKKEEPING_TIMEOUT, DELIVERY_RETRY, events_now, wait_until
    from relance.workflows.search_attributes import STEP

# workflow.patched ids: each marks a change of the commands a running journey issues.
DEFERRALS = "deferred-sends-v1"


@workflow.defn
class JourneyWorkflow:
    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        self._input = input
        self._spec = input.spec
        self._offset = timedelta(seconds=input.clock_offset_seconds)
        self._events_seen: dict[str, datetime] = {}
        self._ended: tuple[str, str] | None = None  # (status, reason) once cancelled or exited
        self._current: str | None = None
        self._next_send: NextSend | None = None
        self._done: list[StepOutcome] = []
        self._triggers = 0
        self._final: str | None = None  # completed / cancelled / exited, once run() is over

    # --- messages from outside -------------------------------------------------

    @workflow.signal
    def trigger(self, event: TriggerEvent) -> None:
        """Sent by signal-with-start; a repeated trigger only counts as a duplicate."""
        self._triggers += 1

    @workflow.signal
    def event(self, event: DomainEvent) -> None:
        self._events_seen.setdefault(event.type, event.occurred_at)
        if event.type in self._spec.exit_on and self._ended is None:
            self._ended = ("exited", f"exit event '{event.type}'")

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        if self._ended is None:
            self._ended = ("cancelled", f"cancelled: {request.reason}")

    @workflow.query
    def state(self) -> JourneyState:
        return JourneyState(
            scenario=self._spec.scenario,
            journey=self._spec.journey,
            version=self._spec.version,
            contact=self._input.contact,
            status=self._final or "running",
            current_step=self._current,
            next_send=self._next_send,
            steps_done=self._done,
            end_reason=self._ended[1] if self._ended else None,
            duplicate_triggers=max(0, self._triggers - 1),
        )

    # --- the journey -------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyState:
        previous_at = input.trigger.occurred_at
        steps = input.spec.steps
        for index, step in enumerate(steps):
            anchor = input.trigger.occurred_at if step.after is Anchor.TRIGGER else previous_at
            due = input.due_at.get(step.id) or anchor + timedelta(seconds=step.delay_seconds)
            if step.id in input.due_at and due < input.trigger.occurred_at:
                # Timed from a date that was too close (a booking for tonight, a reminder a day before).
                self._done += await self._skip([step], f"due {due.isoformat()}, before the trigger")
                continue
            self._enter(step, due)
            if not await self._wait_until(due):
                await self._skip_rest(steps[index:])
                break
            outcome = await self._run_step(step)
            self._done.append(outcome)
            previous_at = outcome.at
        self._current, self._next_send = None, None
        status, reason = self._ended or ("completed", None)
        self._final = status
        workflow.upsert_search_attributes([STEP.value_set(f"done:{status}")])
        workflow.upsert_memo({"summary": self._summary(status)})
        await workflow.execute_activity(
            end_journey,
            JourneyEnd(
                workflow_id=workflow.info().workflow_id,
                status=status,
                reason=reason,
                at=events_now(self._offset),
            ),
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        )
        return self.state()

    async def _run_step(self, step: StepSpec) -> StepOutcome:
        if not step.enabled:
            return (await self._skip([step], "message disabled"))[0]
        referred = [e for e in step.unless if e in self._events_seen]
        if referred:
            return (await self._skip([step], f"contact sent '{referred[0]}' since the journey started"))[0]
        outcome = await self._deliver(step, deferrals=0)
        # Deferred (an SMS outside the contact's hours): wait for the opening, then ask again.
        while outcome.status is DeliveryStatus.DEFERRED and outcome.until and workflow.patched(DEFERRALS):
            self._done.append(outcome)
            self._next_send = NextSend(step=step.id, at=outcome.until)
            if not await self._wait_until(outcome.until):
                assert self._ended is not None
                return (await self._skip([step], self._ended[1]))[0]
            outcome = await self._deliver(step, deferrals=sum(o.step == step.id for o in self._done))
        return outcome

    async def _deliver(self, step: StepSpec, deferrals: int) -> StepOutcome:
        return await workflow.execute_activity(
            deliver_message,
            DeliveryRequest(
                idempotency_key=self._key(step),
                workflow_id=workflow.info().workflow_id,
                scenario=self._spec.scenario,
                journey=self._spec.journey,
                version=self._spec.version,
                contact=self._input.contact,
                step=step,
                trigger=self._input.trigger,
                at=events_now(self._offset),
                deferrals=deferrals,
            ),
            start_to_close_timeout=timedelta(seconds=self._input.delivery_timeout_seconds),
            retry_policy=DELIVERY_RETRY,
        )

    async def _wait_until(self, due: datetime) -> bool:
        """Sleep until ``due`` unless the journey ends first; True when it is still running."""
        # Read the state after the wait: an end that comes in with the timer still counts.
        await wait_until(due, unless=lambda: self._ended is not None, offset=self._offset)
        return self._ended is None

    async def _skip_rest(self, steps: list[StepSpec]) -> None:
        assert self._ended is not None
        self._done.extend(await self._skip(steps, self._ended[1]))

    async def _skip(self, steps: list[StepSpec], reason: str) -> list[StepOutcome]:
        requests = [
            SkipRequest(
                idempotency_key=self._key(step),
                workflow_id=workflow.info().workflow_id,
                scenario=self._spec.scenario,
                journey=self._spec.journey,
                contact=self._input.contact,
                step=step,
                at=events_now(self._offset),
                reason=reason,
            )
            for step in steps
        ]
        return await workflow.execute_activity(
            skip_messages,
            requests,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
        )

    def _enter(self, step: StepSpec, due: datetime) -> None:
        self._current = step.id
        self._next_send = NextSend(step=step.id, at=due)
        workflow.upsert_search_attributes([STEP.value_set(step.id)])
        workflow.upsert_memo({"summary": self._summary("running")})

    def _key(self, step: StepSpec) -> str:
        return f"{workflow.info().workflow_id}:{step.id}:{step.channel.value}"

    def _summary(self, status: str) -> str:
        done = ", ".join(f"{o.step} {o.status.value}" for o in self._done) or "nothing sent yet"
        upcoming = (
            f"; next: {self._next_send.step} at {self._next_send.at.isoformat()}" if self._next_send else ""
        )
        who = f"{self._spec.scenario}/{self._spec.journey} for {self._input.contact}"
        return f"{who} ({status}): {done}{upcoming}"
