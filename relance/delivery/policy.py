"""The send policy: whether one message goes now, waits, or never goes, and why.

The same rules for every sender (journeys, referrals, gift cards, soft-bounce
retries, bulk sends), in this order, the first that applies deciding:
switched off in its scenario file (S-06), contact gone, held out of an A/B test
(A-04), consent, unsubscribe, bounces and the 3-year rule
(``contacts/consent.py``), SMS hours (D-05), no address. A message that may go
is then rendered, and a marketing one asks commercial pressure (D-06) for a
slot of the contact's day; losing it drops or defers the message, as it says.

Pure: the callers read the contact and its consents, hold the locks, and write
the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from relance.contacts.consent import ineligibility
from relance.delivery.message import Message
from relance.delivery.pressure import PressurePolicy, Verdict, same_time_next_day
from relance.delivery.sms_hours import next_opening, parse_hour
from relance.delivery.variants import HOLDOUT, variant_of
from relance.models.journey import Channel, OnPressure, Purpose
from relance.models.tables.contact import Contact


@dataclass(frozen=True)
class Go:
    """It may go: to this address, in this A/B group."""

    to: str
    variant: str | None


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime
    reason: str


Decision = Go | Skip | Defer


@dataclass(frozen=True)
class SendPolicy:
    default_time_zone: str = "Europe/Paris"  # for contacts without one
    pressure: PressurePolicy = field(default_factory=PressurePolicy)

    def zone(self, contact: Contact | None) -> ZoneInfo:
        return ZoneInfo((contact.time_zone if contact else None) or self.default_time_zone)

    def decide(
        self,
        message: Message,
        contact: Contact | None,
        granted: set[tuple[str, str]],
        *,
        disabled: bool = False,
    ) -> Decision:
        """Whether the message may go now, before rendering and commercial pressure."""
        if disabled:
            return Skip("message disabled in the scenario")
        if contact is None:
            return Skip("contact not found (erased or never imported)")
        variant = variant_of(message.scenario, message.journey, message, message.contact)
        if variant == HOLDOUT:
            return Skip("holdout: in the control group of this message's test, gets no message")
        refusal = ineligibility(contact, granted, message.channel, message.purpose, message.at)
        if refusal:
            return Skip(refusal)
        deferral = self._outside_sms_hours(message, contact)
        if deferral is not None:
            return deferral
        email = message.channel is Channel.EMAIL
        to = contact.email if email else contact.phone
        if not to:
            return Skip(f"contact has no {'email address' if email else 'phone number'}")
        return Go(to=to, variant=variant)

    def capped(self, message: Message) -> bool:
        """Whether the message asks for one of the contact's daily slots."""
        return (
            message.purpose is Purpose.MARKETING
            and self.pressure.max_per_day > 0
            and not message.resend  # the same message again: its slot is already counted
        )

    def after_pressure(
        self, message: Message, verdict: Verdict, contact: Contact | None
    ) -> Skip | Defer | None:
        """What losing its slot makes of the message: dropped, or moved to the next day; None: it goes."""
        if verdict.go:
            return None
        reason = verdict.reason or "commercial pressure"
        if message.on_pressure is OnPressure.DROP:
            return Skip(f"{reason}: dropped")
        zone = self.zone(contact)
        until = same_time_next_day(message.at, zone)
        local = until.astimezone(zone).isoformat(timespec="minutes")
        return Defer(until=until, reason=f"{reason}: deferred to {local}")

    def _outside_sms_hours(self, message: Message, contact: Contact) -> Defer | None:
        window = message.sms_window
        if message.channel is not Channel.SMS or window is None:
            return None
        zone = self.zone(contact)
        opening = next_opening(message.at, zone, parse_hour(window[0]), parse_hour(window[1]))
        if opening is None:
            return None
        local = opening.astimezone(zone).isoformat(timespec="minutes")
        return Defer(
            until=opening,
            reason=f"outside SMS hours ({window[0]}–{window[1]} {zone.key}): deferred to {local}",
        )
