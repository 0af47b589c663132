"""An aiosmtpd server for tests: keeps what it receives, optionally runs a hook on DATA."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Inbox:
    def __init__(self, on_data: Callable[[Envelope], None] | None = None) -> None:
        self.envelopes: list[Envelope] = []
        self.on_data = on_data

    @property
    def messages(self) -> list[Message]:
        return [
            email.message_from_bytes(e.original_content or b"", policy=email.policy.default)
            for e in self.envelopes
        ]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        if self.on_data is not None:
            self.on_data(envelope)
        return "250 Message accepted for delivery"


def start_smtp(inbox: Inbox, port: int) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller
