"""Prints messages to the terminal: the default of ``relance dev``."""

from __future__ import annotations

import sys

from relance.channels.base import OutgoingMessage, SendResult


class ConsoleChannel:
    name = "console"

    async def send(self, message: OutgoingMessage) -> SendResult:
        rule = "-" * 72
        lines = [rule, f"{message.channel.upper()} to {message.to}  ({message.message_id})"]
        if message.subject:
            lines.append(f"Subject: {message.subject}")
        lines += ["", message.text.rstrip(), rule]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return SendResult(provider=self.name, message_id=message.message_id)
