"""Event ingestion: upsert the contact, store the event, start and notify journeys.

Shared by the HTTP API, the Python starter and the simulator, so all three
behave the same. The database transaction stays open while Temporal is
called: if Temporal refuses, nothing is stored, and a retry of the same event
reaches the same deterministic workflow ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from relance.contacts.consent import PURCHASE_EVENT, UNSUBSCRIBE_EVENT, set_consents, unsubscribe
from relance.core.errors import Refused
from relance.models.event import ContactIn, EventAccepted, EventIn, JourneyStarted
from relance.models.journey import DomainEvent, JourneyInput, TriggerEvent
from relance.models.tables.contact import Contact
from relance.models.tables.event import Event
from relance.models.tables.journey import JourneyRun
from relance.referrals.event_types import REFERRAL_EVENTS, ReferralEventError, check
from relance.scenarios.due_dates import DateError, due_times
from relance.scenarios.loader import ScenarioSet
from relance.scenarios.model import STATUS_EVENT, Journey, Scenario, Threshold
from relance.segments.compile import AUDIENCE_EVENTS
from relance.workflows import ids
from relance.workflows import search_attributes as sa
from relance.workflows.journey import JourneyWorkflow

if TYPE_CHECKING:
    from relance.referrals.events import ReferralRouter

log = structlog.get_logger("relance.ingest")


class IngestError(Refused):
    """The event cannot be accepted as sent; the message says what to change."""

    title = "the event cannot be accepted"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


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
    changes: list[tuple[str, str, object, object]] = field(default_factory=list)


def _trigger(event: Event) -> TriggerEvent:
    return TriggerEvent(
        event_id=event.id,
        type=event.type,
        ref="",
        occurred_at=event.occurred_at,
        properties=event.properties,
    )


workflow_id = ids.journey


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
        self, changes: list[tuple[str, str, object, object]], occurred_at: datetime, key: str | None = None
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
            if journey.trigger.segment is not None and not await _in_segment(
                session, journey.trigger.segment, contact, occurred_at
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
            return await self._threshold_ref(session, trigger.threshold, contact, stored)
        return ref or ""

    async def _threshold_ref(
        self, session: AsyncSession, threshold: Threshold, contact: Contact, stored: Event
    ) -> str | None:
        """``<per>:<period>`` once the contact has ``count`` events of this type in the period."""
        zone = ZoneInfo(contact.time_zone or self.default_time_zone)
        start, end, label = calendar_period(stored.occurred_at.astimezone(zone), threshold.per)
        count = await session.scalar(
            select(func.count(Event.id)).where(
                Event.contact_id == contact.id,
                Event.type == stored.type,
                Event.occurred_at >= start,
                Event.occurred_at < end,
            )
        )
        return f"{threshold.per}:{label}" if (count or 0) >= threshold.count else None

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
        wf_id = workflow_id(scenario.scenario, journey.id, contact.external_id, ref)
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


async def upsert_contact(session: AsyncSession, data: ContactIn, source: str = "api") -> tuple[Contact, bool]:
    """Insert or update on the unique key (external id, else email); never a duplicate.

    Consents in the payload are recorded with ``source``; a last purchase date only moves forward.
    """
    contact, created = await _upsert_row(session, data)
    now = datetime.now(UTC)
    if data.consents:
        await set_consents(
            session,
            contact.id,
            {str(c): {str(p): v for p, v in purposes.items()} for c, purposes in data.consents.items()},
            source,
            now,
        )
    if data.last_purchase_at is not None:
        record_purchase(contact, data.last_purchase_at)
    return contact, created


def record_purchase(contact: Contact, at: datetime) -> None:
    if contact.last_purchase_at is None or contact.last_purchase_at < at:
        contact.last_purchase_at = at


ERASED_PREFIX = "erased:"  # the tombstone of an erased contact's external id (relance.contacts.erasure)


def _refuse_erased(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise IngestError(
            "contact.external_id",
            f"contact '{contact.external_id}' was erased (GDPR): it accepts no more events or updates",
        )


async def _upsert_row(session: AsyncSession, data: ContactIn) -> tuple[Contact, bool]:
    if data.external_id is not None and data.external_id.startswith(ERASED_PREFIX):
        raise IngestError(
            "contact.external_id",
            f"'{data.external_id}' is the tombstone of an erased contact (GDPR): it accepts no more events "
            f"or updates, and ids starting with '{ERASED_PREFIX}' are reserved",
        )
    values = data.model_dump(exclude_unset=True, exclude_none=True, exclude={"consents", "last_purchase_at"})
    values.setdefault("attributes", {})
    now = datetime.now(UTC)
    if data.external_id is None:
        assert data.email is not None
        existing = await session.scalar(
            select(Contact).where(Contact.email == data.email).order_by(Contact.id).limit(1)
        )
        if existing is not None:
            _refuse_erased(existing)
            _note_changes(session, existing, values.get("attributes"))
            _apply(existing, values, now)
            return existing, False
        values["external_id"] = f"rc_{uuid.uuid4().hex[:16]}"
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    existing_id = await session.scalar(select(Contact.id).where(Contact.external_id == values["external_id"]))
    if existing_id is not None:
        contact = await session.get(Contact, existing_id)
        assert contact is not None
        _refuse_erased(contact)  # being erased: its id is not yet the tombstone
        _note_changes(session, contact, values.get("attributes"))
        _apply(contact, values, now)
        return contact, False
    stmt = (
        insert(Contact)
        .values(**values, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(Contact.id)
    )
    new_id = await session.scalar(stmt)
    if new_id is None:  # inserted concurrently by another request: update that one
        return await _upsert_row(session, data)
    contact = await session.get(Contact, new_id)
    assert contact is not None
    _note_changes(session, contact, values.get("attributes"), new=True)
    return contact, True


CHANGES = "attribute_changes"  # session.info key: (contact external id, attribute, old, new)


def _note_changes(session: AsyncSession, contact: Contact, attributes: object, new: bool = False) -> None:
    """Remember which attributes change value, for journeys triggered by a status change (S-03)."""
    if not isinstance(attributes, dict):
        return
    before = {} if new else (contact.attributes or {})
    noted = session.info.setdefault(CHANGES, [])
    for name, value in attributes.items():
        if before.get(name) != value:
            noted.append((contact.external_id, name, before.get(name), value))


def attribute_changes(session: AsyncSession) -> list[tuple[str, str, object, object]]:
    """The changes noted since the last call (they are taken)."""
    return session.info.pop(CHANGES, [])


def _apply(contact: Contact, values: dict[str, object], now: datetime) -> None:
    attributes = values.pop("attributes", None)
    email = values.get("email")
    if isinstance(email, str) and email.strip().lower() != (contact.email or "").strip().lower():
        # A new address starts clean; the contact's history stays with them (C-08).
        contact.email_status = "ok"
    for key, value in values.items():
        setattr(contact, key, value)
    if attributes:
        contact.attributes = {**(contact.attributes or {}), **attributes}  # type: ignore[dict-item]
    contact.updated_at = now


def calendar_period(local: datetime, per: str) -> tuple[datetime, datetime, str]:
    """The calendar day, week (from Monday), month or year around ``local``: UTC bounds and a label."""
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if per == "day":
        start, end, label = day, day + timedelta(days=1), f"{day:%Y-%m-%d}"
    elif per == "week":
        start = day - timedelta(days=day.weekday())
        end, iso = start + timedelta(days=7), start.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
    elif per == "month":
        start = day.replace(day=1)
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
        label = f"{start:%Y-%m}"
    else:
        start, label = day.replace(month=1, day=1), f"{day:%Y}"
        end = start.replace(year=start.year + 1)
    # Wall-clock midnights (their UTC offset may differ across a DST change): rebuild each in its zone.
    zone = local.tzinfo
    return (
        start.replace(tzinfo=zone).astimezone(UTC),
        end.replace(tzinfo=zone).astimezone(UTC),
        label,
    )


async def _in_segment(session: AsyncSession, spec: object, contact: Contact, at: datetime) -> bool:
    from relance.segments.audience import (
        audience,  # the segment compiler is loaded only when a journey uses one
    )

    found = await session.scalar(
        select(Contact.id).where(Contact.id == contact.id, Contact.id.in_(audience(spec, at)))  # type: ignore[arg-type]
    )
    return found is not None


def _text(value: object) -> str | None:
    """Attribute values as YAML compares them: 3 and "3" are the same status."""
    return None if value is None else str(value)
