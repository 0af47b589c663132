"""The provider interface every channel implements."""

from __future__ import annotations

import hashlib
from typing import Protocol

from pydantic import BaseModel, Field


class OutgoingMessage(BaseModel):
    idempotency_key: str
    channel: str = Field(description="email or sms")
    purpose: str = Field("marketing", description="marketing, transactional or legal")
    to: str
    sender: str | None = None
    subject: str | None = None
    text: str
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @property
    def message_id(self) -> str:
        """A stable RFC 5322 Message-ID: the same ledger row always carries the same id."""
        digest = hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:32]
        return f"<{digest}@relance>"


class SendResult(BaseModel):
    provider: str
    message_id: str | None = None


class TransientSendError(Exception):
    """The provider did not accept the message but may later: retry (throttling, 4xx, 5xx, network)."""


class PermanentSendError(Exception):
    """The provider refused the message for good: record it, never retry."""


class UncertainSendError(Exception):
    """The connection broke while the provider was taking the message: it may have gone out.

    Never retried: a missing message is better than a duplicate one.
    """


class ChannelProvider(Protocol):
    name: str

    async def send(self, message: OutgoingMessage) -> SendResult: ...
