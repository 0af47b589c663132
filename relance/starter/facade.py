"""Python client for backend services: send events, cancel and inspect journeys.

    from relance.starter import Relance

    async with Relance.from_settings() as relance:
        await relance.send_event({"type": "purchase", "contact": {...}, ...})

It does what ``POST /v1/events`` does (same validation, same signal-with-start),
reading ``RELANCE_*`` settings for the database and Temporal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from relance.contacts.changes import attribute_changes
from relance.contacts.erasure import ErasureReport, erase_contact
from relance.contacts.upsert import IngestError, upsert_contact
from relance.core.db import create_engine, session_factory
from relance.core.settings import Settings, get_settings
from relance.models.event import ContactIn, ContactSaved, EventAccepted, EventIn
from relance.models.journey import CancelRequest, Channel, JourneyState
from relance.models.referral import InvitationsAnswer, RefereeIn, ReferralState
from relance.referrals.event_types import INVITATION_EVENT
from relance.referrals.events import ReferralRouter
from relance.referrals.service import Referrals
from relance.scenarios.loader import ScenarioSet
from relance.scenarios.registry import scenario_registry
from relance.starter.client import connect_temporal
from relance.starter.ingest import Ingestor
from relance.workflows.journey import JourneyWorkflow

__all__ = ["EventAccepted", "IngestError", "Relance", "ValidationError"]


class Relance:
    def __init__(
        self,
        client: Client,
        engine: AsyncEngine,
        settings: Settings,
        scenarios: Callable[[], ScenarioSet] | None = None,
    ) -> None:
        self.client = client
        self.engine = engine
        self.settings = settings
        self.ingestor = Ingestor(
            sessions=session_factory(engine),
            client=client,
            scenarios=scenarios or scenario_registry(settings.scenarios_dir),
            task_queue=settings.task_queue,
            delivery_timeout_seconds=settings.delivery_timeout_seconds,
            default_time_zone=settings.default_time_zone,
        )
        self.referrals: Referrals = Referrals(client, self.ingestor.sessions, settings)
        self.ingestor.referrals = ReferralRouter(self.referrals)

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> Self:
        settings = settings or get_settings()
        client = await connect_temporal(settings)
        return cls(client, create_engine(settings.resolved_database_url()), settings)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> _Connector:
        return _Connector(cls, settings)

    async def close(self) -> None:
        await self.engine.dispose()

    async def send_event(self, event: EventIn | dict[str, Any]) -> EventAccepted:
        """Store the event and start or notify its journeys; raises ValidationError or IngestError."""
        payload = event if isinstance(event, EventIn) else EventIn.model_validate(event)
        return await self.ingestor.ingest(payload)

    async def upsert_contact(self, contact: ContactIn | dict[str, Any]) -> ContactSaved:
        """Create or update a contact (and its consents) without an event."""
        payload = contact if isinstance(contact, ContactIn) else ContactIn.model_validate(contact)
        async with self.ingestor.sessions() as session, session.begin():
            row, created = await upsert_contact(session, payload)
            saved = ContactSaved(external_id=row.external_id, created=created)
            changes = attribute_changes(session)
        await self.ingestor.status_changes(changes, datetime.now(UTC))
        return saved

    async def invite_referees(
        self,
        sponsor: str,
        referees: list[RefereeIn | dict[str, Any]],
        channel: Channel | str = Channel.EMAIL,
    ) -> InvitationsAnswer:
        """A sponsor invites friends (what ``POST /v1/referrals/invitations`` does): each is invited
        or refused with a reason; the sponsor is thanked once. Raises Refused (unknown sponsor)."""
        people = [r if isinstance(r, RefereeIn) else RefereeIn.model_validate(r) for r in referees]
        answer = await self.referrals.invite_batch(sponsor, people, Channel(channel))
        invited = [r.referral_id for r in answer.referrals if r.status == "invited"]
        if invited:
            # The sponsor referred: journeys listening for it hear it as an event (the post-purchase
            # reminder is skipped, R-03). Keyed by the batch; without referees it invites nobody.
            await self.ingestor.ingest(
                EventIn(
                    id=answer.batch_id,
                    type=INVITATION_EVENT,
                    contact=ContactIn(external_id=sponsor),
                    occurred_at=datetime.now(UTC),
                    properties={"batch_id": answer.batch_id, "referrals": invited},
                )
            )
        return answer

    async def referral_code(self, sponsor: str) -> str:
        """The sponsor's code for a purchase's ``properties.referral_code``; made on first use."""
        return await self.referrals.code_for(sponsor)

    async def referral_state(self, referral_id: str) -> ReferralState:
        return await self.referrals.state(referral_id)

    async def reject_referral(self, referral_id: str, reason: str) -> ReferralState:
        """An operator's rejection, until the referral is validated; the sponsor is told."""
        return await self.referrals.reject(referral_id, reason)

    async def erase_contact(self, external_id: str, reason: str | None = None) -> ErasureReport:
        """GDPR erasure: stop the contact's journeys and workflows, purge their personal data, keep
        anonymous counts (see relance.contacts.erasure). Raises UnknownContact; a second call is a no-op."""
        secret = self.settings.resolved_secret_key()
        return await erase_contact(self.client, self.ingestor.sessions, secret, external_id, reason)

    async def cancel_journey(self, workflow_id: str, reason: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id)
        await handle.signal(JourneyWorkflow.cancel, CancelRequest(reason=reason))

    async def journey_state(self, workflow_id: str) -> JourneyState:
        handle = self.client.get_workflow_handle(workflow_id)
        return await handle.query(JourneyWorkflow.state)


class _Connector:
    def __init__(self, cls: type[Relance], settings: Settings | None) -> None:
        self._cls, self._settings = cls, settings
        self._instance: Relance | None = None

    async def __aenter__(self) -> Relance:
        self._instance = await self._cls.connect(self._settings)
        return self._instance

    async def __aexit__(self, *_: object) -> None:
        if self._instance is not None:
            await self._instance.close()
