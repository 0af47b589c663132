"""Event and contact bodies as a backend posts them to ``POST /v1/events`` (see also ``conftest.purchase``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def opted_in(external_id: str, **fields: Any) -> dict[str, Any]:
    """A contact with an email address and the email marketing opt-in."""
    return {
        "external_id": external_id,
        "email": f"{external_id}@example.com",
        "consents": {"email": {"marketing": True}},
        **fields,
    }


def event(kind: str, at: datetime, contact: str | dict[str, Any] = "c-1") -> dict[str, Any]:
    """An event of ``contact``: an external id (a known contact) or a whole contact body."""
    body = {"external_id": contact} if isinstance(contact, str) else contact
    return {"type": kind, "contact": body, "occurred_at": at.isoformat()}
