"""Message channels behind one interface; ``build_channel`` routes email and SMS per settings."""

from __future__ import annotations

from relance.channels.base import (
    ChannelProvider,
    OutgoingMessage,
    SendResult,
)
from relance.channels.console import ConsoleChannel
from relance.channels.file import FileChannel
from relance.channels.memory import NullChannel
from relance.channels.smtp import SmtpChannel
from relance.core.settings import Settings

EMAIL_PROVIDERS = ("console", "file", "smtp", "ses", "null")
SMS_PROVIDERS = ("console", "file", "sns", "null")


class ChannelRouter:
    """Sends each message through the provider configured for its channel (email, sms)."""

    name = "router"

    def __init__(self, email: ChannelProvider, sms: ChannelProvider) -> None:
        self.providers = {"email": email, "sms": sms}

    async def send(self, message: OutgoingMessage) -> SendResult:
        return await self.providers[message.channel].send(message)


def _provider(kind: str, settings: Settings) -> ChannelProvider:
    if kind == "console":
        return ConsoleChannel()
    if kind == "file":
        return FileChannel(settings.outbox_file)
    if kind == "null":
        return NullChannel()
    if kind == "smtp":
        return SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            starttls=settings.smtp_starttls,
        )
    from relance.channels.aws import SesChannel, SnsSmsChannel, aws_client  # boto3: only for SES or SNS

    if kind == "ses":
        client = aws_client("sesv2", settings.aws_region, settings.aws_endpoint_url)
        return SesChannel(client, settings.ses_configuration_set or None)
    client = aws_client("sns", settings.aws_region, settings.aws_endpoint_url)
    return SnsSmsChannel(client, settings.sms_sender_id or None)


def build_channel(settings: Settings) -> ChannelRouter:
    email = (settings.email_channel or settings.channel).lower()
    sms = (settings.sms_channel or settings.channel).lower()
    # RELANCE_CHANNEL=smtp (or ses/sns) names one side only; the other stays on the console.
    if not settings.sms_channel and sms not in SMS_PROVIDERS:
        sms = "console"
    if not settings.email_channel and email not in EMAIL_PROVIDERS:
        email = "console"
    if email not in EMAIL_PROVIDERS:
        raise ValueError(f"RELANCE_EMAIL_CHANNEL: unknown '{email}'; use {', '.join(EMAIL_PROVIDERS)}")
    if sms not in SMS_PROVIDERS:
        raise ValueError(f"RELANCE_SMS_CHANNEL: unknown '{sms}'; use {', '.join(SMS_PROVIDERS)}")
    return ChannelRouter(email=_provider(email, settings), sms=_provider(sms, settings))
