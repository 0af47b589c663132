"""A contact's purchases as the segments and journeys see them: the last purchase date."""

from __future__ import annotations

from datetime import datetime

from relance.models.tables.contact import Contact


def record_purchase(contact: Contact, at: datetime) -> None:
    """A purchase at ``at``; the last purchase date only moves forward (events arrive out of order)."""
    if contact.last_purchase_at is None or contact.last_purchase_at < at:
        contact.last_purchase_at = at
