"""Event ingestion: upsert the contact, store the event, start and notify journeys.

Shared by the HTTP API, the Python starter and the simulator, so all three
behave the same. The database transaction stays open while Temporal is
called: if Temporal refuses, nothing is stored, and a retry of the same event
reaches the same deterministic workflow ids. The rules it applies belong to their
services: the contact upsert (relance.contacts), calendar periods and due dates
(relance.scenarios), segment admission (relance.segments).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from relance.contacts.changes import Change, attribute_changes
from relance.contacts.consent import PURCHASE_EVENT, UNSUBSCRIBE_EVENT, unsubscribe
from relance.contacts.purchases import record_purchase
from relance.contacts.upsert import IngestError, upsert_contact
from relance.core.text import unstorable
from relance.models.event import ContactIn, EventAccepted, EventIn, JourneyStarted
from relance.models.journey import DomainEvent, JourneyInput, TriggerEvent
from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from relance.models.tables.journey import JourneyRun
from relance.referrals.event_types import REFERRAL_EVENTS, ReferralEventError, check
from relance.referrals.events import ReferralRouter
from relance.scenarios.due_dates import DateError, due_times
from relance.scenarios.loader import ScenarioSet
from relance.scenarios.model import STATUS_EVENT, Journey, Scenario
from relance.scenarios.periods import threshold_ref
from relance.segments.admission import in_segment
from relance.segments.compile import AUDIENCE_EVENTS
from relance.workflows import ids
from relance.workflows import search_attributes as sa
from relance.workflows.journey import JourneyWorkflow

log = structlog.get_logger("relance.ingest")

STARTING = "starting"  # stored, not yet accepted by Temporal


@dataclass
class _Start:
    result: JourneyStarted
    input: JourneyInput
    fresh: bool = True  # a new journey row, to mark running once Temporal has it
    call: bool = True  # whether to call Temporal at all

    def duplicate(self, call: bool = True) -> _Start:
        result = self.result.model_copy(update={"status": "duplicate"})
        return _Start(result=result, input=self.input, fresh=False, call=call)

    def outside_segment(self) -> _Start:
        result = self.result.model_copy(update={"status": "not_in_segment"})
        return _Start(result=result, input=self.input, fresh=False, call=False)


@dataclass
class _Plan:
    accepted: EventAccepted
    starts: list[_Start]
    notify: list[str]
    changes: list[Change] = field(default_factory=list)


def _trigger(event: Event) -> TriggerEvent:
    return TriggerEvent(
        event_id=event.id,
        type=event.type,
        ref="",
        occurred_at=event.occurred_at,
        properties=event.properties,
    )


@dataclass
class Ingestor:
    sessions: async_sessionmaker[AsyncSession]
    client: Client
    scenarios: Callable[[], ScenarioSet]
    task_queue: str
    delivery_timeout_seconds: float = 30.0
    clock_offset: timedelta = timedelta(0)  # simulations: server time minus event time
    referrals: ReferralRouter | None = None  # the referral program, where it runs
    default_time_zone: str = "Europe/Paris"  # calendar periods of contacts without a time zone

    async def ingest(self, event: EventIn) -> EventAccepted:
        # The HTTP API refuses these before parsing; the Python starter's events arrive here directly.
        for where, why in unstorable(event.model_dump(mode="json", exclude_none=True), []):
            raise IngestError(where, why)
        scenarios = self.scenarios()
        known = scenarios.known_event_types() | {PURCHASE_EVENT, UNSUBSCRIBE_EVENT} | AUDIENCE_EVENTS
        if self.referrals is not None:
            known |= REFERRAL_EVENTS
        if event.type not in known:
            raise IngestError(
                "type",
                f"unknown event type '{event.type}'; the scenarios know: "
                f"{', '.join(sorted(known)) or 'none'} (declare it as a trigger, exit_on or unless)",
            )
        if self.referrals is not None:
            try:
                check(event)
            except ReferralEventError as error:
                raise IngestError(error.field, error.message) from None
        refs = [(s, j, _ref(event, j)) for s, j in scenarios.journeys_for_event(event.type)]

        # One short transaction, then Temporal: no database lock is held across an RPC.
        try:
            async with self.sessions() as session, session.begin():
                plan = await self._plan(session, scenarios, event, refs)
        except IntegrityError:
            # A request at the same moment stored this event id (or created this contact) between
            # our read and our write: read again, and this one is the documented duplicate.
            async with self.sessions() as session, session.begin():
                plan = await self._plan(session, scenarios, event, refs)
        started = [await self._start(p) for p in plan.starts]
        signalled = [wf_id for wf_id in plan.notify if await self._signal(wf_id, event)]
        begun = [p.result.workflow_id for p in plan.starts if p.fresh]
        if begun:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(JourneyRun)
                    .where(JourneyRun.workflow_id.in_(begun), JourneyRun.status == STARTING)
                    .values(status="running")
                )
        await self.status_changes(plan.changes, event.occurred_at, event.id)
        referrals = []
        if self.referrals is not None:  # after the journeys: a failure here leaves them started
            key = event.id or f"e{plan.accepted.event_id}"
            referrals = await self.referrals.route(event, plan.accepted.contact, key)
        log.info(
            "event.ingested",
            event_id=plan.accepted.event_id,
            type=event.type,
            contact=plan.accepted.contact,
            duplicate=plan.accepted.duplicate,
            journeys=[j.workflow_id for j in started],
            signalled=len(signalled),
        )
        return plan.accepted.model_copy(
            update={"journeys": started, "signalled": signalled, "referrals": referrals}
        )

    async def status_changes(
        self, changes: list[Change], occurred_at: datetime, key: str | None = None
    ) -> list[EventAccepted]:
        """An attribute that changed value is an event of its own for journeys that wait for it (S-03)."""
        watched = {
            j.trigger.status.attribute
            for _, j in self.scenarios().journeys_for_event(STATUS_EVENT)
            if j.trigger.status
        }
        accepted = []
        for contact, name, before, after in changes:
            if name in watched:
                accepted.append(
                    await self.ingest(
                        EventIn(
                            id=f"{key}:{name}:{after}"[:200] if key else None,
                            type=STATUS_EVENT,
                            contact=ContactIn(external_id=contact),
                            occurred_at=occurred_at,
                            properties={"attribute": name, "from": before, "to": after},
                        )
                    )
                )
        return accepted

    async def _plan(
        self,
        session: AsyncSession,
        scenarios: ScenarioSet,
        event: EventIn,
        refs: list[tuple[Scenario, Journey, str | None]],
    ) -> _Plan:
        if event.id is not None:
            existing = await session.scalar(select(Event).where(Event.key == event.id))
            if existing is not None:
                return await self._plan_retry(session, scenarios, existing)
        contact, created = await upsert_contact(session, event.contact)
        changes = attribute_changes(session)
        occurred_at = event.occurred_at.astimezone(UTC)
        if event.type == PURCHASE_EVENT:
            record_purchase(contact, occurred_at)
        elif event.type == UNSUBSCRIBE_EVENT:
            await unsubscribe(session, contact, occurred_at, source="event")
        stored = Event(
            key=event.id,
            type=event.type,
            contact_id=contact.id,
            occurred_at=event.occurred_at.astimezone(UTC),
            properties=event.properties,
        )
        session.add(stored)
        await session.flush()
        trigger = _trigger(stored)
        starts: list[_Start] = []
        for scenario, journey, ref in refs:
            entry = await self._entry_ref(session, journey, contact, stored, ref)
            if entry is None:
                continue  # not this journey's kind of change, or the threshold is not reached
            start = self._start_of(scenario, journey, contact, trigger, entry or f"e{stored.id}")
            if journey.trigger.segment is not None and not await in_segment(
                session, journey.trigger.segment, contact.id, occurred_at
            ):
                starts.append(start.duplicate(call=False).outside_segment())
                continue
            run = await session.get(JourneyRun, start.result.workflow_id)
            if run is None:
                session.add(
                    JourneyRun(
                        workflow_id=start.result.workflow_id,
                        scenario=scenario.scenario,
                        journey=journey.id,
                        scenario_version=start.input.spec.version,
                        contact_id=contact.id,
                        trigger_event_id=stored.id,
                        status=STARTING,
                        started_at=datetime.now(UTC),
                    )
                )
                starts.append(start)
            elif run.status == "running":
                # Already under way: the trigger reaches it as a signal, counted as a duplicate.
                starts.append(start.duplicate())
            else:
                starts.append(start.duplicate(call=False))
        notify = await self._running_interested(session, scenarios, contact, event)
        accepted = EventAccepted(event_id=stored.id, contact=contact.external_id, contact_created=created)
        return _Plan(accepted=accepted, starts=starts, notify=notify, changes=changes)

    async def _entry_ref(
        self, session: AsyncSession, journey: Journey, contact: Contact, stored: Event, ref: str | None
    ) -> str | None:
        """The journey's ref for this event ('' for the event's own), or None when it does not enter."""
        trigger = journey.trigger
        if not trigger.admits(stored.properties or {}):
            return None
        if trigger.status is not None:
            change = stored.properties or {}
            wanted = trigger.status
            if change.get("attribute") != wanted.attribute:
                return None
            if wanted.to is not None and _text(change.get("to")) != wanted.to:
                return None
            if wanted.from_ is not None and _text(change.get("from")) != wanted.from_:
                return None
        if trigger.reentry == "once":
            return "once"
        if trigger.threshold is not None:
            zone = ZoneInfo(contact.time_zone or self.default_time_zone)
            return await threshold_ref(session, trigger.threshold, stored, zone)
        return ref or ""

    async def _plan_retry(self, session: AsyncSession, scenarios: ScenarioSet, existing: Event) -> _Plan:
        """The same event again: stored once; journeys whose start failed are started now."""
        contact = await session.get(Contact, existing.contact_id)
        assert contact is not None
        pending = await session.scalars(
            select(JourneyRun).where(
                JourneyRun.trigger_event_id == existing.id, JourneyRun.status == STARTING
            )
        )
        starts: list[_Start] = []
        for run in pending:
            scenario = scenarios.get(run.scenario)
            journey = next((j for j in scenario.journeys if j.id == run.journey), None) if scenario else None
            if scenario is None or journey is None:
                continue  # removed from the scenarios since: nothing to start
            ref = ids.ref_of(run.workflow_id)
            starts.append(self._start_of(scenario, journey, contact, _trigger(existing), ref))
        accepted = EventAccepted(
            event_id=existing.id, duplicate=True, contact=contact.external_id, contact_created=False
        )
        return _Plan(accepted=accepted, starts=starts, notify=[])

    def _start_of(
        self,
        scenario: Scenario,
        journey: Journey,
        contact: Contact,
        trigger: TriggerEvent,
        ref: str,
    ) -> _Start:
        spec = scenario.journey_spec(journey)
        wf_id = ids.journey(scenario.scenario, journey.id, contact.external_id, ref)
        try:
            due_at = due_times(
                journey, trigger.properties, ZoneInfo(contact.time_zone or self.default_time_zone)
            )
        except DateError as error:
            raise IngestError(f"properties.{journey.trigger.date}", str(error)) from None
        return _Start(
            result=JourneyStarted(
                workflow_id=wf_id, scenario=scenario.scenario, journey=journey.id, status="started"
            ),
            input=JourneyInput(
                spec=spec,
                contact=contact.external_id,
                trigger=trigger.model_copy(update={"ref": ref}),
                delivery_timeout_seconds=self.delivery_timeout_seconds,
                clock_offset_seconds=self.clock_offset.total_seconds(),
                due_at=due_at,
            ),
        )

    async def _start(self, start: _Start) -> JourneyStarted:
        if not start.call:
            return start.result
        spec, contact = start.input.spec, start.input.contact
        try:
            await self.client.start_workflow(
                JourneyWorkflow.run,
                start.input,
                id=start.result.workflow_id,
                task_queue=self.task_queue,
                start_signal="trigger",
                start_signal_args=[start.input.trigger],
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.CONTACT_ID, contact),
                        SearchAttributePair(sa.SCENARIO, spec.scenario),
                        SearchAttributePair(sa.JOURNEY, spec.journey),
                        SearchAttributePair(sa.SCENARIO_VERSION, spec.version),
                        SearchAttributePair(sa.STEP, "start"),
                    ]
                ),
                memo={"summary": f"{spec.scenario}/{spec.journey} for {contact}: started"},
            )
        except WorkflowAlreadyStartedError:
            # Closed already (the ledger row lagged behind): the trigger ran once, that is enough.
            return start.result.model_copy(update={"status": "duplicate"})
        return start.result

    async def _signal(self, wf_id: str, event: EventIn) -> bool:
        try:
            await self.client.get_workflow_handle(wf_id).signal(
                JourneyWorkflow.event, DomainEvent(type=event.type, occurred_at=event.occurred_at)
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False  # the journey ended meanwhile: nothing to tell it
            raise
        return True

    @staticmethod
    async def _running_interested(
        session: AsyncSession, scenarios: ScenarioSet, contact: Contact, event: EventIn
    ) -> list[str]:
        """Running journeys of this contact that listen to this event (exit_on or unless).

        A journey keyed by a property (``trigger.ref: booking_id``) hears only the events that
        carry its own value, when they carry one: cancelling one booking leaves the others."""
        refs = {
            (s.scenario, j.id): j.trigger.ref
            for s in scenarios
            for j in s.journeys
            if event.type in j.exit_on or any(event.type in m.unless for m in j.messages)
        }
        if not refs:
            return []
        runs = await session.execute(
            select(JourneyRun.workflow_id, JourneyRun.scenario, JourneyRun.journey).where(
                JourneyRun.contact_id == contact.id,
                JourneyRun.status == "running",
                tuple_(JourneyRun.scenario, JourneyRun.journey).in_(list(refs)),
            )
        )
        heard = []
        for wf_id, scenario, journey in runs.all():
            name = refs[(scenario, journey)]
            if name is not None and event.properties.get(name) not in (None, ""):
                if str(event.properties[name]) != ids.ref_of(wf_id):
                    continue
            heard.append(wf_id)
        return heard


def _ref(event: EventIn, journey: Journey) -> str | None:
    """The trigger reference: the configured property, else the event's own id."""
    name = journey.trigger.ref
    if name is None:
        return event.id
    value = event.properties.get(name)
    if value is None or value == "":
        raise IngestError(
            f"properties.{name}",
            f"required by journey '{journey.id}' (its trigger.ref) to tell one "
            f"'{event.type}' from another; add it to the event's properties",
        )
    return str(value)


def _text(value: object) -> str | None:
    """Attribute values as YAML compares them: 3 and "3" are the same status."""
    return None if value is None else str(value)
