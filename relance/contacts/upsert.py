"""Creating or updating a contact from an event, the API, the Python starter or a referral.

The unique key is the external id, else the email: an upsert never makes a duplicate, even when
two requests insert the same contact at once. Erased contacts (GDPR) accept nothing any more.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from relance.contacts.changes import note_changes
from relance.contacts.consent import set_consents
from relance.contacts.purchases import record_purchase
from relance.core.errors import Refused
from relance.core.text import unstorable
from relance.models.event import ContactIn
from relance.models.tables.contact import Contact

ERASED_PREFIX = "erased:"  # the tombstone of an erased contact's external id (relance.contacts.erasure)


class IngestError(Refused):
    """The event or contact cannot be accepted as sent; the message says what to change."""

    title = "the event cannot be accepted"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


async def upsert_contact(session: AsyncSession, data: ContactIn, source: str = "api") -> tuple[Contact, bool]:
    """Insert or update on the unique key (external id, else email); never a duplicate.

    Consents in the payload are recorded with ``source``; a last purchase date only moves forward.
    Attribute changes are noted on the session (relance.contacts.changes).
    """
    for where, why in unstorable(data.model_dump(mode="json", exclude_none=True), []):
        raise IngestError(where, why)  # before any write: nothing is half-stored
    contact, created = await _upsert_row(session, data)
    now = datetime.now(UTC)
    if data.consents:
        await set_consents(
            session,
            contact.id,
            {str(c): {str(p): v for p, v in purposes.items()} for c, purposes in data.consents.items()},
            source,
            now,
        )
    if data.last_purchase_at is not None:
        record_purchase(contact, data.last_purchase_at)
    return contact, created


def _refuse_erased(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise IngestError(
            "contact.external_id",
            f"contact '{contact.external_id}' was erased (GDPR): it accepts no more events or updates",
        )


async def _upsert_row(session: AsyncSession, data: ContactIn) -> tuple[Contact, bool]:
    if data.external_id is not None and data.external_id.startswith(ERASED_PREFIX):
        raise IngestError(
            "contact.external_id",
            f"'{data.external_id}' is the tombstone of an erased contact (GDPR): it accepts no more events "
            f"or updates, and ids starting with '{ERASED_PREFIX}' are reserved",
        )
    values = data.model_dump(exclude_unset=True, exclude_none=True, exclude={"consents", "last_purchase_at"})
    values.setdefault("attributes", {})
    now = datetime.now(UTC)
    if data.external_id is None:
        assert data.email is not None
        existing = await session.scalar(
            select(Contact).where(Contact.email == data.email).order_by(Contact.id).limit(1)
        )
        if existing is not None:
            _refuse_erased(existing)
            note_changes(session, existing, values.get("attributes"))
            _apply(existing, values, now)
            return existing, False
        values["external_id"] = f"rc_{uuid.uuid4().hex[:16]}"
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    existing_id = await session.scalar(select(Contact.id).where(Contact.external_id == values["external_id"]))
    if existing_id is not None:
        contact = await session.get(Contact, existing_id)
        assert contact is not None
        _refuse_erased(contact)  # being erased: its id is not yet the tombstone
        note_changes(session, contact, values.get("attributes"))
        _apply(contact, values, now)
        return contact, False
    stmt = (
        insert(Contact)
        .values(**values, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(Contact.id)
    )
    new_id = await session.scalar(stmt)
    if new_id is None:  # inserted concurrently by another request: update that one
        return await _upsert_row(session, data)
    contact = await session.get(Contact, new_id)
    assert contact is not None
    note_changes(session, contact, values.get("attributes"), new=True)
    return contact, True


def _apply(contact: Contact, values: dict[str, object], now: datetime) -> None:
    attributes = values.pop("attributes", None)
    email = values.get("email")
    if isinstance(email, str) and email.strip().lower() != (contact.email or "").strip().lower():
        # A new address starts clean; the contact's history stays with them (C-08).
        contact.email_status = "ok"
    for key, value in values.items():
        setattr(contact, key, value)
    if isinstance(attributes, dict) and attributes:  # a dict: ContactIn.attributes, dumped
        contact.attributes = {**(contact.attributes or {}), **attributes}
    contact.updated_at = now
