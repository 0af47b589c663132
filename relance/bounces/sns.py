"""Amazon SNS HTTP notifications: parsing and signature verification.

SES reports bounces and complaints through an SNS topic that POSTs JSON to
``/webhooks/ses``. Anyone can POST there, so every message is checked against
the certificate SNS signs with, fetched only from an allowed URL and cached.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Where SNS keeps its signing certificates and subscription links (every region, China too).
DEFAULT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"


class SnsError(Exception):
    """The request is not a genuine SNS message; nothing may be done with it."""


class SnsMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    type: Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"] = Field(alias="Type")
    message_id: str = Field(alias="MessageId", min_length=1)
    topic_arn: str = Field(alias="TopicArn", min_length=1)
    message: str = Field(alias="Message")
    timestamp: str = Field(alias="Timestamp")
    signature_version: Literal["1", "2"] = Field(alias="SignatureVersion")
    signature: str = Field(alias="Signature")
    signing_cert_url: str = Field(alias="SigningCertURL")
    subject: str | None = Field(None, alias="Subject")
    subscribe_url: str | None = Field(None, alias="SubscribeURL")
    token: str | None = Field(None, alias="Token")

    def string_to_sign(self) -> bytes:
        """The fields SNS signs, in its order, each as ``name\\nvalue\\n``."""
        if self.type == "Notification":
            fields = [("Message", self.message), ("MessageId", self.message_id)]
            if self.subject is not None:
                fields.append(("Subject", self.subject))
            fields += [("Timestamp", self.timestamp), ("TopicArn", self.topic_arn), ("Type", self.type)]
        else:
            fields = [
                ("Message", self.message),
                ("MessageId", self.message_id),
                ("SubscribeURL", self.subscribe_url or ""),
                ("Timestamp", self.timestamp),
                ("Token", self.token or ""),
                ("TopicArn", self.topic_arn),
                ("Type", self.type),
            ]
        return "".join(f"{name}\n{value}\n" for name, value in fields).encode()


def parse(body: bytes) -> SnsMessage:
    try:
        return SnsMessage.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()[:5]
        )
        raise SnsError(f"not an SNS message: {problems}") from error


class SnsVerifier:
    """Checks SNS signatures; signing certificates are fetched once per URL."""

    def __init__(self, url_pattern: str = DEFAULT_URL_PATTERN, topic_arns: frozenset[str] = frozenset()):
        self._url = re.compile(url_pattern)
        self._topics = topic_arns
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def allowed_url(self, url: str | None) -> bool:
        return bool(url) and self._url.match(url or "") is not None

    async def verify(self, message: SnsMessage) -> None:
        if self._topics and message.topic_arn not in self._topics:
            raise SnsError(f"topic {message.topic_arn} is not one of RELANCE_SES_TOPIC_ARNS")
        if not self.allowed_url(message.signing_cert_url):
            raise SnsError(f"signing certificate URL {message.signing_cert_url!r} is not an SNS address")
        key = await self._key(message.signing_cert_url)
        try:
            signature = base64.b64decode(message.signature, validate=True)
        except (binascii.Error, ValueError) as error:
            raise SnsError("signature is not base64") from error
        digest = hashes.SHA1() if message.signature_version == "1" else hashes.SHA256()
        try:
            key.verify(signature, message.string_to_sign(), padding.PKCS1v15(), digest)
        except InvalidSignature as error:
            raise SnsError("signature does not match the message") from error

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        key = self._keys.get(url)
        if key is None:
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.get(url)
                response.raise_for_status()
                certificate = x509.load_pem_x509_certificate(response.content)
            except (httpx.HTTPError, ValueError) as error:
                raise SnsError(f"could not load the signing certificate from {url}: {error}") from error
            public = certificate.public_key()
            if not isinstance(public, rsa.RSAPublicKey):
                raise SnsError("signing certificate does not hold an RSA key")
            key = self._keys[url] = public
        return key

    async def confirm_subscription(self, message: SnsMessage) -> None:
        """Visit the SubscribeURL, which tells SNS to start delivering to us."""
        if not self.allowed_url(message.subscribe_url):
            raise SnsError(f"SubscribeURL {message.subscribe_url!r} is not an SNS address")
        assert message.subscribe_url is not None
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(message.subscribe_url)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise SnsError(f"could not confirm the subscription: {error}") from error
