"""Signed, expiring tokens for links in messages: unsubscribe, opt-in, tracking.

itsdangerous signs with HMAC-SHA1 over a key derived from the secret and a
per-use salt, and embeds the signing time: a forged, tampered or expired token
is refused, and a token made for one use cannot serve another.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class TokenError(ValueError):
    """The token is not one of ours, or no longer valid; the message is safe to show."""


class TokenExpired(TokenError):
    """Signed by us but too old: pages say so instead of calling the link forged."""


@dataclass(frozen=True)
class UnsubscribeToken:
    contact: str  # external id
    purpose: str
    delivery: str | None = None  # the message the link came in, for analytics


@dataclass(frozen=True)
class OptInToken:
    contact: str  # external id
    channel: str  # the channel whose marketing the contact accepts
    delivery: str | None = None  # the message the link came in, for analytics


@dataclass(frozen=True)
class TrackingToken:
    delivery: str  # the ledger's idempotency key
    url: str | None  # where a click goes; None for the open pixel


class Signer:
    def __init__(self, secret: str, unsubscribe_max_age_seconds: float) -> None:
        if len(secret) < 16:
            raise ValueError("RELANCE_SECRET_KEY: use at least 16 characters")
        self._unsubscribe = URLSafeTimedSerializer(secret, salt="relance.unsubscribe")
        self._opt_in = URLSafeTimedSerializer(secret, salt="relance.opt_in")
        self._tracking = URLSafeTimedSerializer(secret, salt="relance.tracking")
        self.unsubscribe_max_age = unsubscribe_max_age_seconds

    def tracking_token(self, delivery: str, url: str | None = None) -> str:
        return self._tracking.dumps({"d": delivery, "u": url})

    def read_tracking(self, token: str) -> TrackingToken:
        """Signed, so a click link can never be turned into an open redirect."""
        try:
            data = self._tracking.loads(token)
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if not isinstance(data, dict) or not isinstance(data.get("d"), str):
            raise TokenError("this link is not valid")
        url = data.get("u")
        return TrackingToken(delivery=data["d"], url=url if isinstance(url, str) else None)

    def unsubscribe_token(self, contact: str, purpose: str = "marketing", delivery: str | None = None) -> str:
        payload: dict[str, str] = {"c": contact, "p": purpose}
        if delivery is not None:
            payload["d"] = delivery
        return self._unsubscribe.dumps(payload)

    def read_unsubscribe(self, token: str) -> UnsubscribeToken:
        try:
            data = self._unsubscribe.loads(token, max_age=round(self.unsubscribe_max_age))
        except SignatureExpired:
            raise TokenExpired("this unsubscribe link has expired") from None
        except BadSignature:
            raise TokenError("this unsubscribe link is not valid") from None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            raise TokenError("this unsubscribe link is not valid")
        delivery = data.get("d")
        return UnsubscribeToken(
            contact=data["c"],
            purpose=str(data.get("p", "marketing")),
            delivery=delivery if isinstance(delivery, str) else None,
        )

    def opt_in_token(self, contact: str, channel: str = "email", delivery: str | None = None) -> str:
        payload: dict[str, str] = {"c": contact, "ch": channel}
        if delivery is not None:
            payload["d"] = delivery
        return self._opt_in.dumps(payload)

    def read_opt_in(self, token: str) -> OptInToken:
        """Lives as long as an unsubscribe link: both come in the same messages."""
        try:
            data = self._opt_in.loads(token, max_age=round(self.unsubscribe_max_age))
        except SignatureExpired:
            raise TokenExpired("this opt-in link has expired") from None
        except BadSignature:
            raise TokenError("this opt-in link is not valid") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("c", "ch")):
            raise TokenError("this opt-in link is not valid")
        delivery = data.get("d")
        return OptInToken(
            contact=data["c"], channel=data["ch"], delivery=delivery if isinstance(delivery, str) else None
        )
