"""Message channels behind one interface; ``build_channel`` picks one from settings."""

from __future__ import annotations

from relance.channels.base import (
    ChannelProvider,
    OutgoingMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    UncertainSendError,
)
from relance.config import Settings

__all__ = [
    "ChannelProvider",
    "OutgoingMessage",
    "PermanentSendError",
    "SendResult",
    "TransientSendError",
    "UncertainSendError",
    "build_channel",
]


def build_channel(settings: Settings) -> ChannelProvider:
    name = settings.channel.lower()
    if name == "console":
        from relance.channels.console import ConsoleChannel

        return ConsoleChannel()
    if name == "file":
        from relance.channels.file import FileChannel

        return FileChannel(settings.outbox_file)
    if name == "smtp":
        from relance.channels.smtp import SmtpChannel

        return SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            starttls=settings.smtp_starttls,
        )
    if name == "null":
        from relance.channels.memory import NullChannel

        return NullChannel()
    raise ValueError(
        f"RELANCE_CHANNEL: unknown channel '{settings.channel}'; use console, file, smtp or null"
    )
