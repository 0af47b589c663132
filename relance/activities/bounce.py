"""The activities of soft-bounce retries: another attempt of a message, and why they stopped.

A message that soft-bounced is tried again (004: 3 attempts over 24 h) as it is
now in its scenario file, through the same ``deliver_message`` path as the
first attempt, under a ledger key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio import activity

from relance.activities.delivery import DeliveryActivities, step_message
from relance.bounces.service import RESEND_MARK
from relance.delivery import ledger
from relance.delivery.message import Occasion
from relance.models.journey import BounceEnd, DeliveryStatus, ResendRequest, StepOutcome, StepSpec
from relance.models.tables.event import Event
from relance.models.tables.journey import JourneyRun


@dataclass
class BounceActivities:
    delivery: DeliveryActivities  # its sessions, scenario files and delivery path

    @activity.defn(name="resend_message")
    async def resend(self, request: ResendRequest) -> StepOutcome:
        """Another attempt of a message that soft-bounced, rebuilt from the ledger and its journey."""
        async with self.delivery.sessions() as session:
            base = await ledger.row(session, request.delivery_key)
            run = await session.get(JourneyRun, base.workflow_id) if base else None
            event = await session.get(Event, run.trigger_event_id) if run else None
        if base is None or run is None or event is None:
            return _not_resent(request, "only journey messages are tried again")
        step = self._current_step(base.scenario, base.journey, base.message)
        if step is None:
            return _not_resent(request, "the message is no longer in the scenario")
        message = step_message(
            step,
            key=f"{request.delivery_key}{RESEND_MARK}{request.attempt}",
            workflow_id=base.workflow_id,
            scenario=base.scenario,
            journey=base.journey,
            contact=base.contact_external_id,
            occasion=Occasion(event.type, event.occurred_at, dict(event.properties or {})),
            at=request.at,
            resend=True,
        )
        return await self.delivery.deliver_one(message)

    def _current_step(self, scenario_id: str, journey_id: str, message_id: str) -> StepSpec | None:
        if self.delivery.scenarios is None:
            return None
        scenario = self.delivery.scenarios().get(scenario_id)
        journey = next((j for j in scenario.journeys if j.id == journey_id), None) if scenario else None
        if scenario is None or journey is None:
            return None
        return next((s for s in scenario.journey_spec(journey).steps if s.id == message_id), None)

    @activity.defn(name="end_soft_bounces")
    async def end_soft_bounces(self, end: BounceEnd) -> None:
        async with self.delivery.sessions() as session, session.begin():
            row = await ledger.row(session, end.delivery_key)
            if row is not None:
                first = (row.reason or "soft bounce").split(" — ", 1)[0]  # idempotent under retries
                row.reason, row.updated_at = f"{first} — {end.reason}", datetime.now(UTC)


def _not_resent(request: ResendRequest, reason: str) -> StepOutcome:
    return StepOutcome(step=request.delivery_key, status=DeliveryStatus.SKIPPED, at=request.at, reason=reason)
