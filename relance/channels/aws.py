"""Amazon SES v2 (email, raw MIME so our headers survive) and SNS (SMS), through boto3.

Provider errors are classified once, here: throttling, 5xx and network errors
before the request was answered are retried by Temporal; rejections are
permanent; a connection lost while AWS was answering may have sent the message.
"""

from __future__ import annotations

import asyncio
from email.utils import parseaddr
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from relance.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendResult,
    TransientSendError,
    UncertainSendError,
)
from relance.channels.mime import build_email, email_bytes

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "KMSThrottlingException",
}


def classify(error: Exception) -> Exception:
    """The relance send error that a boto3 failure means."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        text = f"{code}: {error.response.get('Error', {}).get('Message', '')}"
        if code in _THROTTLING or status == 429 or status >= 500:
            return TransientSendError(text)
        return PermanentSendError(text)
    if isinstance(error, ReadTimeoutError | ConnectionClosedError):
        return UncertainSendError(str(error))  # the request reached AWS; its answer did not reach us
    if isinstance(error, EndpointConnectionError | BotoCoreError):
        return TransientSendError(str(error))
    return error


def aws_client(service: str, region: str, endpoint_url: str | None) -> Any:
    # Retries are Temporal's job (with the ledger guarding duplicates), not botocore's.
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=20)
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint_url or None, config=config
    )


class SesChannel:
    name = "ses"

    def __init__(self, client: Any, configuration_set: str | None = None) -> None:
        self.client = client
        self.configuration_set = configuration_set

    def _send(self, message: OutgoingMessage) -> SendResult:
        email = build_email(message)
        # Raw content: recipients come from the To header, the display name from From.
        request: dict[str, Any] = {
            "FromEmailAddress": parseaddr(email["From"])[1],
            "Content": {"Raw": {"Data": email_bytes(email)}},
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            answer = self.client.send_email(**request)
        except Exception as error:
            raise classify(error) from error
        return SendResult(provider=self.name, message_id=answer.get("MessageId"))

    async def send(self, message: OutgoingMessage) -> SendResult:
        return await asyncio.to_thread(self._send, message)


class SnsSmsChannel:
    name = "sns"

    def __init__(self, client: Any, sender_id: str | None = None) -> None:
        self.client = client
        self.sender_id = sender_id

    def _send(self, message: OutgoingMessage) -> SendResult:
        attributes: dict[str, Any] = {
            # Transactional SMS get the better route; marketing ones are Promotional.
            "AWS.SNS.SMS.SMSType": {
                "DataType": "String",
                "StringValue": "Promotional" if message.purpose == "marketing" else "Transactional",
            }
        }
        if self.sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self.sender_id}
        try:
            answer = self.client.publish(
                PhoneNumber=message.to, Message=message.text, MessageAttributes=attributes
            )
        except Exception as error:
            raise classify(error) from error
        return SendResult(provider=self.name, message_id=answer.get("MessageId"))

    async def send(self, message: OutgoingMessage) -> SendResult:
        return await asyncio.to_thread(self._send, message)
