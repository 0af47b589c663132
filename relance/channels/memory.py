"""Channels that send nothing: null (benchmarks) and capture (simulation, tests)."""

from __future__ import annotations

from relance.channels.base import OutgoingMessage, SendResult


class NullChannel:
    name = "null"

    async def send(self, message: OutgoingMessage) -> SendResult:
        return SendResult(provider=self.name, message_id=message.message_id)


class CaptureChannel:
    """Keeps every message in memory, so a simulation can show what would have gone out."""

    name = "capture"

    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.messages.append(message)
        return SendResult(provider=self.name, message_id=message.message_id)
