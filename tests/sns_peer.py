"""A stand-in for Amazon SNS's HTTP side: it signs notifications like SNS does, serves its
signing certificate over HTTP and records subscription confirmations.

The canonical string follows the AWS documentation, written here independently of
``relance.bounces.sns`` so that a mistake in one is caught by the other.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
SIGNED_FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class SnsPeer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = _certificate(self.key)
        self.confirmed: list[str] = []  # query strings of SubscribeURL visits
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/SimpleNotificationService"):
                    body = peer.pem
                elif self.path.startswith("/confirm"):
                    peer.confirmed.append(self.path.partition("?")[2])
                    body = b"<ConfirmSubscriptionResponse/>"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.cert_url = f"{self.url}/SimpleNotificationService-test.pem"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(self, fields: dict[str, Any], key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
        names = SIGNED_FIELDS[fields["Type"]]
        text = "".join(f"{name}\n{fields[name]}\n" for name in names if name in fields)
        digest = hashes.SHA1() if fields["SignatureVersion"] == "1" else hashes.SHA256()
        signature = (key or self.key).sign(text.encode(), padding.PKCS1v15(), digest)
        return {**fields, "Signature": base64.b64encode(signature).decode()}

    def notification(
        self, message: dict[str, Any] | str, version: str = "1", **overrides: Any
    ) -> dict[str, Any]:
        fields = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": TOPIC,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "SignatureVersion": version,
            "SigningCertURL": self.cert_url,
            **overrides,
        }
        return self.sign(fields)

    def subscription_confirmation(self) -> dict[str, Any]:
        token = uuid.uuid4().hex
        return self.sign(
            {
                "Type": "SubscriptionConfirmation",
                "MessageId": str(uuid.uuid4()),
                "Token": token,
                "TopicArn": TOPIC,
                "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
                "SubscribeURL": f"{self.url}/confirm?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}",
                "Timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "SignatureVersion": "2",
                "SigningCertURL": self.cert_url,
            }
        )


def bounce(message_id: str, address: str, hard: bool, at: datetime | None = None) -> dict[str, Any]:
    """An SES bounce notification as SES publishes it to SNS."""
    when = (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent" if hard else "Transient",
            "bounceSubType": "General" if hard else "MailboxFull",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1" if hard else "4.2.2",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                    if hard
                    else "smtp; 452 4.2.2 mailbox full",
                }
            ],
            "timestamp": when,
            "feedbackId": str(uuid.uuid4()),
        },
        "mail": {
            "timestamp": when,
            "source": "shop@example.com",
            "messageId": message_id,
            "destination": [address],
        },
    }


def complaint(message_id: str, address: str) -> dict[str, Any]:
    when = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": when,
            "feedbackId": str(uuid.uuid4()),
            "complaintFeedbackType": "abuse",
        },
        "mail": {
            "timestamp": when,
            "source": "shop@example.com",
            "messageId": message_id,
            "destination": [address],
        },
    }
