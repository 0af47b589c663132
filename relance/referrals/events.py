"""The referral program's side of ``POST /v1/events`` (and of simulations).

- ``referral_sent`` from a sponsor, with ``properties.referees`` (a list of
  ``{email, phone, first_name, last_name}``) and an optional ``channel``:
  invites them, one thank-you for the batch.
- ``purchase`` with ``properties.referral_id`` (from an invitation link) or
  ``properties.referral_code`` (a sponsor's code, typed or from a shared link):
  reconciles the referral; ``properties.order_id`` names the purchase.
- ``order_returned`` / ``order_cancelled`` with ``properties.order_id``: a
  return inside the validation window abandons the referral.

The event itself is always kept; what the program made of it comes back in the
answer's ``referrals``, with a reason when it did nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from relance.contacts.consent import PURCHASE_EVENT
from relance.core.errors import Refused
from relance.models.event import EventIn
from relance.models.journey import Channel
from relance.models.referral import ReferralOutcome
from relance.models.tables.contact import Contact
from relance.referrals.event_types import INVITATION_EVENT, REFEREES, RETURN_EVENTS
from relance.referrals.service import Referrals


class ReferralRouter:
    def __init__(self, referrals: Referrals) -> None:
        self.referrals = referrals

    async def route(self, event: EventIn, contact_key: str, event_key: str) -> list[ReferralOutcome]:
        props = event.properties
        async with self.referrals.sessions() as session:
            contact = await session.scalar(select(Contact).where(Contact.external_id == contact_key))
        assert contact is not None  # the event was stored with it
        at = event.occurred_at
        if event.type == INVITATION_EVENT and "referees" in props:
            referees = REFEREES.validate_python(props["referees"])
            try:
                batch = await self.referrals.invite_batch(
                    contact.external_id,
                    referees,
                    Channel(props.get("channel") or Channel.EMAIL),
                    key=event_key,
                    at=at,
                )
            except Refused as error:
                return [ReferralOutcome(status="refused", detail=error.message)]
            return [
                ReferralOutcome(referral_id=a.referral_id, status=a.status, detail=a.reason or a.referee)
                for a in batch.referrals
            ]
        if event.type == PURCHASE_EVENT and ("referral_id" in props or "referral_code" in props):
            referral_id = props.get("referral_id")
            outcome = await self.referrals.reconcile_purchase(
                contact,
                str(props["order_id"]),
                at,
                referral_id=str(referral_id) if referral_id else None,
                code=None if referral_id else str(props["referral_code"]),
                key=event_key,
            )
            return [outcome]
        if event.type in RETURN_EVENTS:
            cancelled = await self.referrals.cancel_order_event(str(props["order_id"]), at)
            return [cancelled] if cancelled else []
        return []
