"""Handing one message to its provider, and what the provider's answer means for the ledger.

sent: accepted. failed: refused for good, never retried. unconfirmed: the
connection broke while the provider was taking it; it may have gone out, so it
is never retried. retrying: refused for now (throttling, 4xx, 5xx, network);
the row is free to be claimed again and Temporal retries with backoff.
"""

from __future__ import annotations

from relance.channels.base import (
    ChannelProvider,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    UncertainSendError,
)
from relance.delivery.ledger import RETRYING, Attempt
from relance.models.journey import DeliveryStatus


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
