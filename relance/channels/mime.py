"""The RFC 5322 message every email channel sends (SMTP, SES raw)."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from relance.channels.base import OutgoingMessage


def build_email(message: OutgoingMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = message.sender or "no-reply@relance.localhost"
    email["To"] = message.to
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = message.message_id
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


def email_bytes(email: EmailMessage) -> bytes:
    return email.as_bytes(policy=SMTP)  # CRLF line endings, as SMTP DATA and SES raw require
