"""Event ingestion: upsert the contact, store the event, start and notify journeys.

Shared by the HTTP API, the Python starter and the simulator, so all three
behave the same. The database transaction stays open while Temporal is
called: if Temporal refuses, nothing is stored, and a retry of the same event
reaches the same deterministic workflow ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from relance.models.events import ContactIn, EventAccepted, EventIn, JourneyStarted
from relance.models.journey_io import DomainEvent, JourneyInput, TriggerEvent
from relance.models.scenario import Journey, Scenario
from relance.models.tables import Contact, Event, JourneyRun
from relance.scenarios import ScenarioSet
from relance.workflows import search_attributes as sa
from relance.workflows.journey import JourneyWorkflow

log = structlog.get_logger("relance.ingest")


class IngestError(ValueError):
    """The event cannot be accepted as sent; the message says what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def workflow_id(scenario: str, journey: str, contact: str, ref: str) -> str:
    return f"journey:{scenario}:{journey}:{contact}:{ref}"


@dataclass
class Ingestor:
    sessions: async_sessionmaker[AsyncSession]
    client: Client
    scenarios: Callable[[], ScenarioSet]
    task_queue: str
    delivery_timeout_seconds: float = 30.0

    async def ingest(self, event: EventIn) -> EventAccepted:
        scenarios = self.scenarios()
        known = scenarios.known_event_types()
        if event.type not in known:
            raise IngestError(
                "type",
                f"unknown event type '{event.type}'; the scenarios know: "
                f"{', '.join(sorted(known)) or 'none'} (declare it as a trigger, exit_on or unless)",
            )
        triggered = scenarios.journeys_for_event(event.type)
        refs = [(s, j, _ref(event, j)) for s, j in triggered]

        async with self.sessions() as session, session.begin():
            if event.id is not None:
                existing = await session.scalar(select(Event).where(Event.key == event.id))
                if existing is not None:
                    contact = await session.get(Contact, existing.contact_id)
                    assert contact is not None
                    return EventAccepted(
                        event_id=existing.id,
                        duplicate=True,
                        contact=contact.external_id,
                        contact_created=False,
                    )
            contact, created = await upsert_contact(session, event.contact)
            stored = Event(
                key=event.id,
                type=event.type,
                contact_id=contact.id,
                occurred_at=event.occurred_at.astimezone(UTC),
                properties=event.properties,
            )
            session.add(stored)
            await session.flush()
            trigger_base = TriggerEvent(
                event_id=stored.id,
                type=event.type,
                ref="",
                occurred_at=stored.occurred_at,
                properties=event.properties,
            )
            started = [
                await self._start(session, scenario, journey, contact, trigger_base, ref or f"e{stored.id}")
                for scenario, journey, ref in refs
            ]
            signalled = await self._notify_running(session, scenarios, contact, event)
        log.info(
            "event.ingested",
            event_id=stored.id,
            type=event.type,
            contact=contact.external_id,
            journeys=[j.workflow_id for j in started],
            signalled=len(signalled),
        )
        return EventAccepted(
            event_id=stored.id,
            contact=contact.external_id,
            contact_created=created,
            journeys=started,
            signalled=signalled,
        )

    async def _start(
        self,
        session: AsyncSession,
        scenario: Scenario,
        journey: Journey,
        contact: Contact,
        trigger: TriggerEvent,
        ref: str,
    ) -> JourneyStarted:
        spec = scenario.journey_spec(journey)
        wf_id = workflow_id(scenario.scenario, journey.id, contact.external_id, ref)
        trigger = trigger.model_copy(update={"ref": ref})
        result = JourneyStarted(workflow_id=wf_id, scenario=scenario.scenario, journey=journey.id, status="started")
        run = await session.get(JourneyRun, wf_id)
        if run is not None and run.status != "running":
            return result.model_copy(update={"status": "duplicate"})
        if run is None:
            session.add(
                JourneyRun(
                    workflow_id=wf_id,
                    scenario=scenario.scenario,
                    journey=journey.id,
                    scenario_version=spec.version,
                    contact_id=contact.id,
                    trigger_event_id=trigger.event_id,
                    status="running",
                    started_at=datetime.now(UTC),
                )
            )
            await session.flush()
        else:
            result = result.model_copy(update={"status": "duplicate"})
        try:
            await self.client.start_workflow(
                JourneyWorkflow.run,
                JourneyInput(
                    spec=spec,
                    contact=contact.external_id,
                    trigger=trigger,
                    delivery_timeout_seconds=self.delivery_timeout_seconds,
                ),
                id=wf_id,
                task_queue=self.task_queue,
                start_signal="trigger",
                start_signal_args=[trigger],
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.CONTACT_ID, contact.external_id),
                        SearchAttributePair(sa.SCENARIO, scenario.scenario),
                        SearchAttributePair(sa.JOURNEY, journey.id),
                        SearchAttributePair(sa.SCENARIO_VERSION, spec.version),
                        SearchAttributePair(sa.STEP, "start"),
                    ]
                ),
                memo={"summary": f"{scenario.scenario}/{journey.id} for {contact.external_id}: started"},
            )
        except WorkflowAlreadyStartedError:
            # Closed already (the ledger row lagged behind): the trigger ran once, that is enough.
            result = result.model_copy(update={"status": "duplicate"})
        return result

    async def _notify_running(
        self, session: AsyncSession, scenarios: ScenarioSet, contact: Contact, event: EventIn
    ) -> list[str]:
        interested = [
            (s.scenario, j.id)
            for s in scenarios
            for j in s.journeys
            if event.type in j.exit_on or any(event.type in m.unless for m in j.messages)
        ]
        if not interested:
            return []
        runs = await session.scalars(
            select(JourneyRun.workflow_id).where(
                JourneyRun.contact_id == contact.id,
                JourneyRun.status == "running",
                tuple_(JourneyRun.scenario, JourneyRun.journey).in_(interested),
            )
        )
        signalled: list[str] = []
        for wf_id in runs:
            try:
                await self.client.get_workflow_handle(wf_id).signal(
                    JourneyWorkflow.event,
                    DomainEvent(type=event.type, occurred_at=event.occurred_at),
                )
                signalled.append(wf_id)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise  # the journey ended meanwhile otherwise: nothing to tell it
        return signalled


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


async def upsert_contact(session: AsyncSession, data: ContactIn) -> tuple[Contact, bool]:
    """Insert or update on the unique key (external id, else email); never a duplicate."""
    values = data.model_dump(exclude_unset=True, exclude_none=True)
    values.setdefault("attributes", {})
    now = datetime.now(UTC)
    if data.external_id is None:
        assert data.email is not None
        existing = await session.scalar(
            select(Contact).where(Contact.email == data.email).order_by(Contact.id).limit(1)
        )
        if existing is not None:
            _apply(existing, values, now)
            return existing, False
        values["external_id"] = f"rc_{uuid.uuid4().hex[:16]}"
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    existing_id = await session.scalar(
        select(Contact.id).where(Contact.external_id == values["external_id"])
    )
    if existing_id is not None:
        contact = await session.get(Contact, existing_id)
        assert contact is not None
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
        return await upsert_contact(session, data)
    contact = await session.get(Contact, new_id)
    assert contact is not None
    return contact, True


def _apply(contact: Contact, values: dict[str, object], now: datetime) -> None:
    attributes = values.pop("attributes", None)
    for key, value in values.items():
        setattr(contact, key, value)
    if attributes:
        contact.attributes = {**(contact.attributes or {}), **attributes}  # type: ignore[dict-item]
    contact.updated_at = now
