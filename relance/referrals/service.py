"""Starting referrals (with the fraud guards), reporting conversions and returns, operator rejection."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from relance.config import Settings
from relance.models.events import ContactIn
from relance.models.referral_io import (
    Cancellation,
    Conversion,
    ReferralAnswer,
    ReferralIn,
    ReferralInput,
    ReferralState,
    Rejection,
)
from relance.models.referral_tables import Referral
from relance.models.tables import Contact
from relance.referrals.guards import normal_email, normal_phone, refusal
from relance.starter.ingest import upsert_contact
from relance.workflows.referral import ReferralWorkflow


class ReferralError(ValueError):
    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


ENDED = ("rewarded", "abandoned", "rejected")  # the workflow is over: signals would find nobody


def workflow_id(referral_id: str) -> str:
    return f"referral:{referral_id}"


class Referrals:
    def __init__(
        self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self.client, self.sessions, self.settings = client, sessions, settings

    async def invite(self, data: ReferralIn) -> ReferralAnswer:
        """Refused with a reason (kept as a ``refused`` referral), or invited: never both."""
        email, phone = normal_email(data.referee.email), normal_phone(data.referee.phone)
        referral_id = f"r{secrets.token_hex(6)}"
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            sponsor = await session.scalar(select(Contact).where(Contact.external_id == data.sponsor))
            if sponsor is None:
                raise ReferralError("sponsor", f"no contact '{data.sponsor}': create the sponsor first", 404)
            reason = await refusal(session, sponsor, email, phone)
            referee = None
            if reason is None:
                referee, _ = await upsert_contact(
                    session,
                    ContactIn(
                        external_id=None if email else f"phone:{phone}",  # a key for SMS-only referees
                        email=email,
                        phone=phone,
                        first_name=data.referee.first_name,
                        last_name=data.referee.last_name,
                    ),
                    source="referral",
                )
            session.add(
                Referral(
                    id=referral_id,
                    sponsor_id=sponsor.id,
                    referee_id=referee.id if referee else None,
                    referee_email=email,
                    referee_phone=phone,
                    status="refused" if reason else "invited",
                    reason=reason,
                    created_at=now,
                    updated_at=now,
                )
            )
            sponsor_name = " ".join(p for p in (sponsor.first_name, sponsor.last_name) if p) or "A friend"
            referee_id = referee.external_id if referee else ""
        if reason:
            return ReferralAnswer(referral_id=referral_id, status="refused", reason=reason)
        await self.client.start_workflow(
            ReferralWorkflow.run,
            ReferralInput(
                referral_id=referral_id,
                sponsor=data.sponsor,
                referee=referee_id,
                channel=data.channel,
                sponsor_name=sponsor_name,
                validation_days=self.settings.referral_validation_days,
                reward_amount=self.settings.referral_reward_amount,
            ),
            id=workflow_id(referral_id),
            task_queue=self.settings.task_queue,
            memo={"summary": f"referral {referral_id}: {data.sponsor} invited {referee_id}"},
        )
        return ReferralAnswer(referral_id=referral_id, status="invited")

    async def _handle(self, referral_id: str):  # type: ignore[no-untyped-def]
        async with self.sessions() as session:
            row = await session.get(Referral, referral_id)
        if row is None:
            raise ReferralError("referral_id", f"no referral '{referral_id}'", 404)
        if row.status == "refused":
            raise ReferralError("referral_id", f"referral '{referral_id}' was refused: {row.reason}", 409)
        return self.client.get_workflow_handle_for(ReferralWorkflow.run, workflow_id(referral_id)), row

    async def convert(self, referral_id: str, order_id: str) -> ReferralState:
        handle, row = await self._handle(referral_id)
        if row.status in ("abandoned", "rejected"):
            raise ReferralError(
                "referral_id", f"referral '{referral_id}' is {row.status}: nothing to reconcile", 409
            )
        await handle.signal(ReferralWorkflow.converted, Conversion(order_id=order_id, at=datetime.now(UTC)))
        return await handle.query(ReferralWorkflow.state)

    async def cancel_order(self, referral_id: str, order_id: str) -> ReferralState:
        handle, row = await self._handle(referral_id)
        if row.status in ENDED:
            raise ReferralError("referral_id", f"referral '{referral_id}' is {row.status}: too late", 409)
        await handle.signal(ReferralWorkflow.cancelled, Cancellation(order_id=order_id, at=datetime.now(UTC)))
        return await handle.query(ReferralWorkflow.state)

    async def reject(self, referral_id: str, reason: str) -> ReferralState:
        handle, row = await self._handle(referral_id)
        if row.status in ENDED:
            raise ReferralError(
                "referral_id", f"the referral is {row.status}: it can no longer be rejected", 409
            )
        try:
            return await handle.execute_update(ReferralWorkflow.reject, Rejection(reason=reason))
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ReferralError("referral_id", message, 409) from error

    async def state(self, referral_id: str) -> ReferralState:
        handle, _ = await self._handle(referral_id)
        return await handle.query(ReferralWorkflow.state)
