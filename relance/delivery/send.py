"""Handing one message to its provider, and what the provider's answer means for the ledger.

sent: accepted. failed: refused for good, never retried. unconfirmed: the
connection broke while the provider was taking it; it may have gone out, so it
is never retried. retrying: refused for now (throttling, 4xx, 5xx, network);
the row is free to be claimed again and Temporal retries with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass

from relance.channels.base import (
    ChannelProvider,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    UncertainSendError,
)
from relance.delivery.ledger import FINAL, RETRYING
from relance.models.journey import DeliveryStatus


@dataclass(frozen=True)
class Attempt:
    status: str  # a DeliveryStatus, or RETRYING
    reason: str | None = None
    provider: str | None = None
    message_id: str | None = None
    refused_for_now: TransientSendError | None = None  # to raise again, so Temporal retries

    @property
    def outcome_status(self) -> DeliveryStatus:
        """The status reported to the workflow: a retrying message counts as failed until retried."""
        return DeliveryStatus(self.status) if self.status in FINAL else DeliveryStatus.FAILED


async def send(channel: ChannelProvider, message: OutgoingMessage) -> Attempt:
    """Call the provider once; its errors become the attempt's status, never an exception."""
    try:
        result = await channel.send(message)
    except TransientSendError as error:
        return Attempt(RETRYING, str(error), refused_for_now=error)
    except PermanentSendError as error:
        return Attempt(DeliveryStatus.FAILED.value, str(error))
    except UncertainSendError as error:
        return Attempt(DeliveryStatus.UNCONFIRMED.value, str(error))
    return Attempt(DeliveryStatus.SENT.value, None, provider=result.provider, message_id=result.message_id)
