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


class Signer:
    def __init__(self, secret: str, unsubscribe_max_age_seconds: float) -> None:
        if len(secret) < 16:
            raise ValueError("RELANCE_SECRET_KEY: use at least 16 characters")
        self._unsubscribe = URLSafeTimedSerializer(secret, salt="relance.unsubscribe")
        self.unsubscribe_max_age = unsubscribe_max_age_seconds

    def unsubscribe_token(self, contact: str, purpose: str = "marketing") -> str:
        return self._unsubscribe.dumps({"c": contact, "p": purpose})

    def read_unsubscribe(self, token: str) -> UnsubscribeToken:
        try:
            data = self._unsubscribe.loads(token, max_age=self.unsubscribe_max_age)
        except SignatureExpired:
            raise TokenError("this unsubscribe link has expired") from None
        except BadSignature:
            raise TokenError("this unsubscribe link is not valid") from None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            raise TokenError("this unsubscribe link is not valid")
        return UnsubscribeToken(contact=data["c"], purpose=str(data.get("p", "marketing")))
