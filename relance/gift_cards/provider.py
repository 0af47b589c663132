"""Gift-card providers. The interface fits partners' HTTP APIs (issue with an idempotency
key, get back a code and a link); the local provider issues cards itself, for development
and for merchants who honour their own codes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IssuedCard:
    code: str
    url: str | None
    provider_ref: str | None


class GiftCardProvider(Protocol):
    name: str

    async def issue(self, key: str, amount_cents: int, currency: str) -> IssuedCard:
        """Issue a card once per ``key``: asking again with the same key returns the same card."""
        ...


class LocalGiftCardProvider:
    """Codes derived from the key with an HMAC: the same key gives the same code, nobody can guess one."""

    name = "local"

    def __init__(self, secret: str, public_url: str) -> None:
        self._secret = secret.encode()
        self._public_url = public_url.rstrip("/")

    async def issue(self, key: str, amount_cents: int, currency: str) -> IssuedCard:
        digest = hmac.new(self._secret, f"gift-card:{key}".encode(), hashlib.sha256).hexdigest().upper()
        code = "-".join(digest[i : i + 4] for i in range(0, 16, 4))
        return IssuedCard(code=code, url=None, provider_ref=None)
