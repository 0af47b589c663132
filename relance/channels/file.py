"""Appends each message as one JSON line to a file (an outbox to inspect or replay)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from relance.channels.base import OutgoingMessage, SendResult


class FileChannel:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line + "\n")

    async def send(self, message: OutgoingMessage) -> SendResult:
        await asyncio.to_thread(self._append, message.model_dump_json())
        return SendResult(provider=self.name, message_id=message.message_id)
