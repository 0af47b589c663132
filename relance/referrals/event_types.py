"""The events the referral program reads, and the checks made before one is stored."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from relance.contacts.consent import PURCHASE_EVENT
from relance.models.event import EventIn
from relance.models.journey import Channel
from relance.models.referral import RefereeIn

INVITATION_EVENT = "referral_sent"
RETURN_EVENTS = frozenset({"order_returned", "order_cancelled"})
REFERRAL_EVENTS = frozenset({INVITATION_EVENT, *RETURN_EVENTS})

REFEREES = TypeAdapter(list[RefereeIn])


class ReferralEventError(ValueError):
    """The event's referral properties are wrong; checked before anything is stored."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def check(event: EventIn) -> None:
    """Refuse, before storing, what the program could never act on."""
    props = event.properties
    if event.type == INVITATION_EVENT and "referees" in props:
        try:
            referees = REFEREES.validate_python(props["referees"])
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ReferralEventError(
                f"properties.referees.{where}", first["msg"].removeprefix("Value error, ")
            ) from None
        if not referees:
            raise ReferralEventError("properties.referees", "list at least one friend to invite")
        if props.get("channel") not in (None, *[c.value for c in Channel]):
            raise ReferralEventError("properties.channel", f"'{props['channel']}' is not email or sms")
    if event.type == PURCHASE_EVENT and ("referral_id" in props or "referral_code" in props):
        if not isinstance(props.get("order_id"), str | int) or props.get("order_id") == "":
            raise ReferralEventError(
                "properties.order_id", "a purchase with a referral needs its order_id (returns name it)"
            )
    if event.type in RETURN_EVENTS and not props.get("order_id"):
        raise ReferralEventError("properties.order_id", f"'{event.type}' needs the order_id it concerns")
