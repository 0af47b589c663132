"""The message as it goes out: its template rendered for the contact, with signed links.

Every message carries a signed unsubscribe link and an opt-in link (R-05); a
marketing email also carries the one-click unsubscribe headers (RFC 8058), and
HTML parts get tracked links and an open pixel (D-09, ``tracking.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from relance.channels.base import OutgoingMessage
from relance.core.tokens import Signer
from relance.delivery.message import Message
from relance.delivery.policy import Go, Skip
from relance.delivery.tracking import track_html
from relance.delivery.variants import template_of
from relance.models.journey import Channel, Purpose
from relance.models.list import Salesperson
from relance.models.tables.contact import Contact
from relance.templates.engine import TemplateError, TemplateStore


@dataclass(frozen=True)
class Renderer:
    templates: TemplateStore
    sender: str  # RELANCE_EMAIL_FROM
    signer: Signer | None = None  # signs the unsubscribe, opt-in and tracking links
    public_url: str = "http://127.0.0.1:8000"
    tracking: bool = True  # open pixel and click links in HTML parts

    def render(
        self, message: Message, contact: Contact, go: Go, salesperson: Salesperson | None = None
    ) -> OutgoingMessage | Skip:
        """The message to hand to the provider, or why it cannot be built."""
        unsubscribe = self.unsubscribe_link(contact, message.key)
        # D-10: from and signed by the salesperson of the contact's list, when asked and assigned.
        sender = (
            str(Address(salesperson.name, addr_spec=str(salesperson.email))) if salesperson else self.sender
        )
        sender_name, sender_email = parseaddr(sender)
        context = _context(message, contact) | {
            "links": {
                "unsubscribe": unsubscribe,
                "opt_in": self.opt_in_link(contact, message.channel, message.key),
            },
            "sender": {"name": sender_name, "email": sender_email},
        }
        try:
            template = template_of(message, go.variant)
            rendered = self.templates.render(template, message.channel, context, locale=contact.locale)
        except TemplateError as error:
            return Skip(f"template error: {error}")
        html = rendered.html
        if html is not None and self.signer is not None and self.tracking:
            html = track_html(html, message.key, self.signer, self.public_url)
        headers: dict[str, str] = {}
        if message.channel is Channel.EMAIL and message.purpose is Purpose.MARKETING:
            # RFC 8058: mailbox providers show an unsubscribe button that POSTs to this URL.
            headers = {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return OutgoingMessage(
            idempotency_key=message.key,
            channel=message.channel,
            purpose=message.purpose,
            to=go.to,
            sender=sender,
            subject=rendered.subject,
            text=rendered.text,
            html=html,
            headers=headers,
        )

    def unsubscribe_link(self, contact: Contact, delivery: str) -> str:
        signer = self.signer
        if signer is None:
            return f"{self.public_url}/u/unavailable"
        token = signer.unsubscribe_token(contact.external_id, delivery=delivery)
        return f"{self.public_url.rstrip('/')}/u/{token}"

    def opt_in_link(self, contact: Contact, channel: Channel, delivery: str) -> str:
        """R-05: consent to marketing on the channel the message came by (a referee's invitation)."""
        signer = self.signer
        if signer is None:
            return f"{self.public_url}/o/unavailable"
        token = signer.opt_in_token(contact.external_id, channel.value, delivery=delivery)
        return f"{self.public_url.rstrip('/')}/o/{token}"


def _context(message: Message, contact: Contact) -> dict[str, Any]:
    occasion = message.occasion
    return {
        "contact": {
            "external_id": contact.external_id,
            "email": contact.email,
            "phone": contact.phone,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "locale": contact.locale,
            "time_zone": contact.time_zone,
            "attributes": dict(contact.attributes or {}),
        },
        "event": {
            "type": occasion.type if occasion else None,
            "occurred_at": occasion.occurred_at if occasion else None,
            "properties": dict(occasion.properties) if occasion else {},
        },
        "message": {
            "id": message.id,
            "scenario": message.scenario,
            "journey": message.journey,
            "channel": message.channel.value,
        },
    }
