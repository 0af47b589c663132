"""moto in server mode: real boto3 clients talk HTTP to it; tests read back what it received."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"  # moto's default account


@dataclass
class MotoServer:
    server: ThreadedMotoServer
    url: str

    def sent_emails(self) -> list[tuple[list[str], EmailMessage]]:
        """What SES accepted, as moto's model dump shows it over HTTP."""
        data = httpx.get(f"{self.url}/moto-api/data.json", timeout=10).json()
        return [
            (
                raw["destinations"],
                email.message_from_string(raw["raw_data"], policy=email.policy.default),  # type: ignore[misc]
            )
            for raw in data.get("ses", {}).get("RawMessage", [])
        ]

    def sent_sms(self, region: str) -> list[tuple[str, str]]:
        # SNS keeps sent SMS outside its model dump: read the peer's state (same process).
        from moto.sns.models import sns_backends

        return list(sns_backends[ACCOUNT][region].sms_messages.values())

    def reset(self) -> None:
        httpx.post(f"{self.url}/moto-api/reset", timeout=10)
