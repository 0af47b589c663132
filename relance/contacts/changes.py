"""Which attributes an upsert changed, for journeys triggered by a status change (S-03).

The upsert notes each change on the session; whoever commits the upsert takes them afterwards
and turns them into status-change events.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.tables.contact import Contact

Change = tuple[str, str, object, object]  # contact external id, attribute, old value, new value
CHANGES = "attribute_changes"  # the session.info key holding the changes noted so far


def note_changes(session: AsyncSession, contact: Contact, attributes: object, new: bool = False) -> None:
    """Remember which of ``attributes`` change value (all of them for a new contact)."""
    if not isinstance(attributes, dict):
        return
    before = {} if new else (contact.attributes or {})
    noted = session.info.setdefault(CHANGES, [])
    for name, value in attributes.items():
        if before.get(name) != value:
            noted.append((contact.external_id, name, before.get(name), value))


def attribute_changes(session: AsyncSession) -> list[Change]:
    """The changes noted since the last call (they are taken)."""
    return session.info.pop(CHANGES, [])
