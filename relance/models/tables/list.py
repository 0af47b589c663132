"""Contact lists and their members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from relance.models.tables.base import Base


class ContactList(Base):
    """A named set of contacts (C-05). Archived, never deleted; its members come back with it."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    salesperson_name: Mapped[str | None] = mapped_column(String(200), doc="signs messages to the list (D-10)")
    salesperson_email: Mapped[str | None] = mapped_column(String(320))
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ListMember(Base):
    __tablename__ = "list_members"

    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True, index=True)
    added_at: Mapped[datetime]
