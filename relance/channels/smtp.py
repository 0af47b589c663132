"""Email over SMTP (stdlib smtplib in a thread: one connection per message)."""

from __future__ import annotations

import asyncio
import smtplib
from email.utils import parseaddr

from relance.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    UncertainSendError,
)
from relance.channels.mime import build_email, email_bytes


class SmtpChannel:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 20.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout

    def _send(self, message: OutgoingMessage) -> SendResult:
        email = build_email(message)
        payload = email_bytes(email)
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise TransientSendError(f"SMTP {self.host}:{self.port}: {error}") from error
        with smtp:
            # Everything before DATA is safe to retry: the server has taken nothing yet.
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls()
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
                envelope_from = parseaddr(email["From"])[1]
                self._expect(*smtp.mail(envelope_from), "MAIL FROM")
                self._expect(*smtp.rcpt(message.to), f"RCPT TO {message.to}")
            except smtplib.SMTPResponseException as error:
                self._raise_for(error.smtp_code, error.smtp_error, "SMTP")
            except (OSError, smtplib.SMTPException) as error:
                raise TransientSendError(f"SMTP {self.host}:{self.port}: {error}") from error
            # During DATA a broken connection leaves the outcome unknown.
            try:
                code, reply = smtp.data(payload)
            except smtplib.SMTPResponseException as error:
                self._raise_for(error.smtp_code, error.smtp_error, "DATA")
            except (OSError, smtplib.SMTPException) as error:
                raise UncertainSendError(f"SMTP connection lost during DATA: {error}") from error
            self._expect(code, reply, "DATA")
        return SendResult(provider=self.name, message_id=message.message_id)

    @classmethod
    def _expect(cls, code: int, reply: bytes, stage: str) -> None:
        if not 200 <= code < 300:
            cls._raise_for(code, reply, stage)

    @staticmethod
    def _raise_for(code: int, reply: bytes | str, stage: str) -> None:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        if 500 <= code < 600:
            raise PermanentSendError(f"{stage} refused: {code} {text}")
        raise TransientSendError(f"{stage} deferred: {code} {text}")

    async def send(self, message: OutgoingMessage) -> SendResult:
        return await asyncio.to_thread(self._send, message)
