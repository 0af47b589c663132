"""Starting referrals (with the fraud guards), reporting conversions and returns, operator rejection."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from relance.contacts.upsert import upsert_contact
from relance.core.errors import Refused
from relance.core.settings import Settings
from relance.models.event import ContactIn
from relance.models.journey import Channel
from relance.models.referral import (
    Cancellation,
    Conversion,
    InvitationsAnswer,
    RefereeIn,
    ReferralAnswer,
    ReferralInput,
    ReferralOutcome,
    ReferralState,
    Rejection,
    ThanksInput,
    ThankYouMode,
)
from relance.models.tables.contact import Contact
from relance.models.tables.referral import Referral, SponsorCode
from relance.referrals.guards import customer_before, normal_email, normal_phone, refusal
from relance.workflows import ids
from relance.workflows.referral import ReferralWorkflow
from relance.workflows.referral_thanks import ReferralThanksWorkflow
from relance.workflows.search_attributes import CONTACT_ID, REFERRAL_ID, STEP

ENDED = ("rewarded", "abandoned", "rejected")  # the workflow is over: signals would find nobody
CLOSED = ("abandoned", "rejected", "refused")  # nothing may reconcile these any more
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till


def derived_id(prefix: str, key: str) -> str:
    """A readable id made from the caller's key (an event id), short enough for the ledger."""
    clean = "".join(c if c.isalnum() or c in "-_." else "-" for c in key)
    if len(clean) <= 48:
        return f"{prefix}{clean}"
    return f"{prefix}{clean[:30]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class Referrals:
    def __init__(
        self,
        client: Client,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock_offset: timedelta = timedelta(0),
    ) -> None:
        self.client, self.sessions, self.settings = client, sessions, settings
        self.clock_offset = clock_offset  # simulations: server time minus event time

    # --- invitations ----------------------------------------------------------------------

    async def invite_batch(
        self,
        sponsor: str,
        referees: list[RefereeIn],
        channel: Channel = Channel.EMAIL,
        *,
        key: str | None = None,
        at: datetime | None = None,
    ) -> InvitationsAnswer:
        """Each referee is refused with a reason (kept as a ``refused`` referral) or invited; the
        sponsor gets one thank-you for the batch. With ``key`` (an event id) the ids derive from
        it, so the same request twice invites nobody twice."""
        now = at or datetime.now(UTC)
        batch_id = derived_id("b", key) if key else f"b{secrets.token_hex(6)}"
        answers: list[ReferralAnswer] = []
        to_start: list[tuple[str, str]] = []  # (referral id, referee external id)
        async with self.sessions() as session, session.begin():
            row = await session.scalar(select(Contact).where(Contact.external_id == sponsor))
            if row is None:
                raise Refused("sponsor", f"no contact '{sponsor}': create the sponsor first", 404)
            sponsor_row = row
            for number, referee in enumerate(referees, start=1):
                referral_id = f"{batch_id.removeprefix('b')}-{number}" if key else f"r{secrets.token_hex(6)}"
                answer, referee_key = await self._invite_one(session, sponsor_row, referee, referral_id, now)
                answers.append(answer)
                if referee_key is not None:
                    to_start.append((answer.referral_id, referee_key))
            sponsor_name = _name(sponsor_row) or "A friend"
            names = [
                (r.first_name or r.email or r.phone or "")
                for r, a in zip(referees, answers, strict=True)
                if a.status == "invited"
            ]
        if to_start:
            await self._start_thanks(batch_id, sponsor, sponsor_name, [i for i, _ in to_start], names)
            for referral_id, referee_key in to_start:
                await self._start(
                    ReferralInput(
                        referral_id=referral_id,
                        sponsor=sponsor,
                        referee=referee_key,
                        channel=channel,
                        sponsor_name=sponsor_name,
                        batch_id=batch_id,
                    )
                )
        return InvitationsAnswer(batch_id=batch_id, referrals=answers)

    async def _invite_one(
        self, session: AsyncSession, sponsor: Contact, data: RefereeIn, referral_id: str, now: datetime
    ) -> tuple[ReferralAnswer, str | None]:
        """The answer, and the referee's key when a workflow is to be started."""
        email, phone = normal_email(data.email), normal_phone(data.phone)
        shown = email or phone
        earlier = await session.get(Referral, referral_id)
        if earlier is not None:  # the same request again: the same answer, started at most once
            referee = await session.get(Contact, earlier.referee_id) if earlier.referee_id else None
            answer = ReferralAnswer(
                referral_id=referral_id, status=earlier.status, referee=shown, reason=earlier.reason
            )
            return answer, referee.external_id if referee and earlier.status == "invited" else None
        reason = await refusal(session, sponsor, email, phone)
        referee = None
        if reason is None:
            referee, _ = await upsert_contact(
                session,
                ContactIn(
                    external_id=None if email else f"phone:{phone}",  # a key for SMS-only referees
                    email=email,
                    phone=phone,
                    first_name=data.first_name,
                    last_name=data.last_name,
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
        await session.flush()  # the next referee of the batch sees this one (duplicate guard)
        if reason:
            return ReferralAnswer(
                referral_id=referral_id, status="refused", referee=shown, reason=reason
            ), None
        assert referee is not None
        return ReferralAnswer(referral_id=referral_id, status="invited", referee=shown), referee.external_id

    async def _start_thanks(
        self, batch_id: str, sponsor: str, sponsor_name: str, referral_ids: list[str], names: list[str]
    ) -> None:
        try:
            await self.client.start_workflow(
                ReferralThanksWorkflow.run,
                ThanksInput(
                    batch_id=batch_id,
                    sponsor=sponsor,
                    sponsor_name=sponsor_name,
                    referral_ids=referral_ids,
                    referees=names,
                    mode=ThankYouMode(self.settings.referral_thank_you),
                    clock_offset_seconds=self.clock_offset.total_seconds(),
                ),
                id=ids.referral_thanks(batch_id),
                task_queue=self.settings.task_queue,
                memo={"summary": f"thank-you to {sponsor} for {len(referral_ids)} invitation(s)"},
            )
        except WorkflowAlreadyStartedError:
            pass  # the same batch again

    async def _start(self, input: ReferralInput) -> None:
        input = input.model_copy(
            update={
                "validation_days": self.settings.referral_validation_days,
                "reward_amount": self.settings.referral_reward_amount,
                "reward": self.settings.referral_reward,
                "promo_pool": self.settings.referral_promo_pool,
                "promo_prefix": self.settings.referral_promo_prefix,
                "clock_offset_seconds": self.clock_offset.total_seconds(),
            }
        )
        try:
            await self.client.start_workflow(
                ReferralWorkflow.run,
                input,
                id=ids.referral(input.referral_id),
                task_queue=self.settings.task_queue,
                # Findable in the UI from the start: ReferralId = '...', Step = 'invited'.
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(REFERRAL_ID, input.referral_id),
                        SearchAttributePair(CONTACT_ID, input.sponsor),
                        SearchAttributePair(STEP, "reconciled" if input.conversion else "invited"),
                    ]
                ),
                memo={"summary": f"referral {input.referral_id}: {input.sponsor} invited {input.referee}"},
            )
        except WorkflowAlreadyStartedError:
            pass  # started by an earlier attempt of the same request

    # --- sponsor codes --------------------------------------------------------------------

    async def code_for(self, sponsor: str) -> str:
        """The sponsor's referral code, made on first use: their first name and four letters."""
        async with self.sessions() as session, session.begin():
            contact = await session.scalar(select(Contact).where(Contact.external_id == sponsor))
            if contact is None:
                raise Refused("sponsor", f"no contact '{sponsor}': create the sponsor first", 404)
            code = await session.scalar(select(SponsorCode.code).where(SponsorCode.contact_id == contact.id))
            if code is not None:
                return code
            stem = _code_stem(contact.first_name) or "FRIEND"
            while True:
                code = f"{stem}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(4))}"
                if await session.get(SponsorCode, code) is None:
                    session.add(SponsorCode(code=code, contact_id=contact.id, created_at=datetime.now(UTC)))
                    return code

    # --- what the referee does ------------------------------------------------------------

    async def reconcile_purchase(
        self,
        buyer: Contact,
        order_id: str,
        at: datetime,
        *,
        referral_id: str | None = None,
        code: str | None = None,
        key: str | None = None,
    ) -> ReferralOutcome:
        """A purchase that came with an invitation link (``referral_id``) or a sponsor's code."""
        async with self.sessions() as session, session.begin():
            if referral_id is not None:
                row = await session.get(Referral, referral_id)
                if row is None:
                    return ReferralOutcome(
                        referral_id=referral_id,
                        status="unknown",
                        detail=f"no referral '{referral_id}': the purchase is kept, no referral reconciled",
                    )
            else:
                assert code is not None
                sponsor_id = await session.scalar(
                    select(SponsorCode.contact_id).where(SponsorCode.code == code.strip().upper())
                )
                if sponsor_id is None:
                    return ReferralOutcome(
                        status="unknown",
                        detail=f"no sponsor has the referral code '{code}': check it; "
                        "the purchase is kept, no referral reconciled",
                    )
                row = await self._referral_of(session, sponsor_id, buyer)
                if row is None:
                    return await self._from_shared_link(session, sponsor_id, buyer, order_id, at, key)
            outcome = _reconcilable(row, order_id)
            if outcome is not None:
                return outcome
            if row.sponsor_id == buyer.id:
                return ReferralOutcome(
                    referral_id=row.id, status="ignored", detail="self-referral: the buyer is the sponsor"
                )
            row.order_id, row.updated_at = order_id, datetime.now(UTC)  # a return may follow at once
            referral = row.id
        handle = self.client.get_workflow_handle_for(ReferralWorkflow.run, ids.referral(referral))
        await handle.signal(ReferralWorkflow.converted, Conversion(order_id=order_id, at=at))
        return ReferralOutcome(referral_id=referral, status="reconciled", detail=f"order {order_id}")

    @staticmethod
    async def _referral_of(session: AsyncSession, sponsor_id: int, buyer: Contact) -> Referral | None:
        """The sponsor's referral of this buyer (by contact, email or phone), open ones first."""
        same = [Referral.referee_id == buyer.id]
        if buyer.email:
            same.append(Referral.referee_email == normal_email(buyer.email))
        if buyer.phone:
            same.append(Referral.referee_phone == normal_phone(buyer.phone))
        rows = list(
            await session.scalars(
                select(Referral)
                .where(Referral.sponsor_id == sponsor_id, or_(*same), Referral.status != "refused")
                .order_by(Referral.created_at)
            )
        )
        rows.sort(key=lambda r: r.status in CLOSED)
        return rows[0] if rows else None

    async def _from_shared_link(
        self,
        session: AsyncSession,
        sponsor_id: int,
        buyer: Contact,
        order_id: str,
        at: datetime,
        key: str | None,
    ) -> ReferralOutcome:
        """A friend nobody invited bought with the sponsor's code: a referral, if the guards agree."""
        sponsor = await session.get(Contact, sponsor_id)
        assert sponsor is not None
        email, phone = normal_email(buyer.email), normal_phone(buyer.phone)
        referral_id = derived_id("link-", key) if key else f"r{secrets.token_hex(6)}"
        if await session.get(Referral, referral_id) is not None:
            return ReferralOutcome(referral_id=referral_id, status="ignored", detail="already reconciled")
        reason = await refusal(session, sponsor, email, phone, customer=False)
        if reason is None and await customer_before(session, buyer, at):
            reason = "the referee is already a customer"
        if reason is None and buyer.id == sponsor.id:
            reason = "self-referral: the referee is the sponsor"
        session.add(
            Referral(
                id=referral_id,
                sponsor_id=sponsor.id,
                referee_id=buyer.id,
                referee_email=email,
                referee_phone=phone,
                status="refused" if reason else "reconciled",
                reason=reason,
                order_id=None if reason else order_id,
                created_at=at,
                updated_at=at,
            )
        )
        if reason:
            return ReferralOutcome(referral_id=referral_id, status="refused", detail=reason)
        await session.flush()
        input = ReferralInput(
            referral_id=referral_id,
            sponsor=sponsor.external_id,
            referee=buyer.external_id,
            channel=Channel.EMAIL,
            sponsor_name=_name(sponsor) or "A friend",
            conversion=Conversion(order_id=order_id, at=at),
        )
        await self._start(input)  # inside the transaction: no row without its workflow
        return ReferralOutcome(referral_id=referral_id, status="reconciled", detail=f"order {order_id}")

    async def cancel_order_event(self, order_id: str, at: datetime) -> ReferralOutcome | None:
        """A return or cancellation: it aborts the referral reconciled with that order, if any."""
        async with self.sessions() as session:
            row = await session.scalar(
                select(Referral).where(Referral.order_id == order_id).order_by(Referral.created_at).limit(1)
            )
        if row is None:
            return None  # an ordinary return: not the program's business
        if row.status in ("validated", "rewarded"):
            return ReferralOutcome(
                referral_id=row.id,
                status="ignored",
                detail=f"the referral is {row.status}: the return came after the validation window",
            )
        if row.status in CLOSED:
            return ReferralOutcome(
                referral_id=row.id, status="ignored", detail=f"the referral is {row.status}"
            )
        handle = self.client.get_workflow_handle_for(ReferralWorkflow.run, ids.referral(row.id))
        await handle.signal(ReferralWorkflow.cancelled, Cancellation(order_id=order_id, at=at))
        return ReferralOutcome(referral_id=row.id, status="cancelled", detail=f"order {order_id}")

    # --- operators and the API ------------------------------------------------------------

    async def _handle(
        self, referral_id: str
    ) -> tuple[WorkflowHandle[ReferralWorkflow, ReferralState], Referral]:
        async with self.sessions() as session:
            row = await session.get(Referral, referral_id)
        if row is None:
            raise Refused("referral_id", f"no referral '{referral_id}'", 404)
        if row.status == "refused":
            raise Refused("referral_id", f"referral '{referral_id}' was refused: {row.reason}", 409)
        return self.client.get_workflow_handle_for(ReferralWorkflow.run, ids.referral(referral_id)), row

    async def convert(self, referral_id: str, order_id: str) -> ReferralState:
        handle, row = await self._handle(referral_id)
        if row.status in ("abandoned", "rejected"):
            raise Refused(
                "referral_id", f"referral '{referral_id}' is {row.status}: nothing to reconcile", 409
            )
        await handle.signal(ReferralWorkflow.converted, Conversion(order_id=order_id, at=datetime.now(UTC)))
        return await handle.query(ReferralWorkflow.state)

    async def cancel_order(self, referral_id: str, order_id: str) -> ReferralState:
        handle, row = await self._handle(referral_id)
        if row.status in ENDED:
            raise Refused("referral_id", f"referral '{referral_id}' is {row.status}: too late", 409)
        await handle.signal(ReferralWorkflow.cancelled, Cancellation(order_id=order_id, at=datetime.now(UTC)))
        return await handle.query(ReferralWorkflow.state)

    async def reject(self, referral_id: str, reason: str) -> ReferralState:
        handle, row = await self._handle(referral_id)
        if row.status in ENDED:
            raise Refused("referral_id", f"the referral is {row.status}: it can no longer be rejected", 409)
        try:
            return await handle.execute_update(ReferralWorkflow.reject, Rejection(reason=reason))
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise Refused("referral_id", message, 409) from error

    async def state(self, referral_id: str) -> ReferralState:
        handle, _ = await self._handle(referral_id)
        return await handle.query(ReferralWorkflow.state)

    async def open_ids(self) -> list[str]:
        """Workflow ids of every referral that has one (simulations wait for them)."""
        async with self.sessions() as session:
            found = await session.scalars(select(Referral.id).where(Referral.status != "refused"))
            return [ids.referral(i) for i in found]


def _reconcilable(row: Referral, order_id: str) -> ReferralOutcome | None:
    """Why this referral cannot take this purchase (a no-op with a reason), or None."""
    if row.status in CLOSED:
        return ReferralOutcome(
            referral_id=row.id, status="ignored", detail=f"the referral is {row.status}: nothing to reconcile"
        )
    if row.order_id == order_id:
        return ReferralOutcome(
            referral_id=row.id, status="ignored", detail=f"order {order_id} already reconciled"
        )
    if row.order_id is not None or row.status != "invited":
        return ReferralOutcome(
            referral_id=row.id,
            status="ignored",
            detail=f"already reconciled with order {row.order_id}: one reward per referral",
        )
    return None


def _name(contact: Contact) -> str:
    return " ".join(p for p in (contact.first_name, contact.last_name) if p)


def _code_stem(first_name: str | None) -> str:
    letters = unicodedata.normalize("NFKD", first_name or "").encode("ascii", "ignore").decode()
    return "".join(c for c in letters.upper() if c.isalpha())[:8]
