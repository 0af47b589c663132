"""Signed, expiring tokens for links in messages (unsubscribe now; tracking later).

itsdangerous signs with HMAC-SHA1 over a key derived from the secret and a
per-use salt, and embeds the signing time: a forged, tampered or expired token
is refused, and a token made for one use cannot serve another.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class TokenError(ValueError):
    """The token is not one of ours, or no longer valid; the message is safe to show."""


@dataclass(frozen=True)
class UnsubscribeToken:
    contact: str  # external id
    purpose: str
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
            data = self._unsubscribe.loads(token, max_age=self.unsubscribe_max_age)
        except SignatureExpired:
            raise TokenError("this unsubscribe link has expired") from None
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
