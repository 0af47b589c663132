"""Possible duplicates (C-04): the same email whatever its case, or the same first and last name
once accents, case, spaces, hyphens, apostrophes and dots are set aside.

Written with ``lower`` and ``replace`` only, so SQLite and PostgreSQL agree: SQLite's ``lower``
knows ASCII only, so accented capitals are mapped before it runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select

from relance.models.tables import Contact

__all__ = ["ACCENTS", "SEPARATORS", "duplicate_ids", "normalise_name"]

ACCENTS: dict[str, str] = {
    **dict.fromkeys("àáâãäåÀÁÂÃÄÅ", "a"),
    **dict.fromkeys("çÇ", "c"),
    **dict.fromkeys("èéêëÈÉÊË", "e"),
    **dict.fromkeys("ìíîïÌÍÎÏ", "i"),
    **dict.fromkeys("ñÑ", "n"),
    **dict.fromkeys("òóôõöøÒÓÔÕÖØ", "o"),
    **dict.fromkeys("ùúûüÙÚÛÜ", "u"),
    **dict.fromkeys("ýÿÝŸ", "y"),
    "œ": "oe",
    "Œ": "oe",
    "æ": "ae",
    "Æ": "ae",
}
SEPARATORS = (" ", "-", "'", "’", ".")


def normalise_name(first: str | None, last: str | None) -> str | None:
    """The Python twin of the SQL key (tests, previews); no key without both names."""
    if first is None or last is None:
        return None
    text = f"{first or ''}{last or ''}"
    text = "".join(ACCENTS.get(ch, ch) for ch in text)
    text = "".join(ch.lower() if ch.isascii() else ch for ch in text)
    for sep in SEPARATORS:
        text = text.replace(sep, "")
    return text


def _name_key() -> ColumnElement[Any]:
    expr: ColumnElement[Any] = Contact.first_name + Contact.last_name  # NULL when a name is missing
    for accented, plain in ACCENTS.items():
        expr = func.replace(expr, literal(accented), literal(plain))
    expr = func.lower(expr)
    for sep in SEPARATORS:
        expr = func.replace(expr, literal(sep), literal(""))
    return expr


def duplicate_ids() -> Select[tuple[int]]:
    """Ids of contacts sharing their email or their normalised name with another contact."""
    keys = select(
        Contact.id.label("id"),
        func.lower(Contact.email).label("email_key"),
        _name_key().label("name_key"),
    ).subquery("keys")
    # grouped on the subquery's columns: PostgreSQL would not see two bound copies as one expression
    emails = select(keys.c.email_key).where(keys.c.email_key.is_not(None)).group_by(keys.c.email_key)
    names = select(keys.c.name_key).where(keys.c.name_key != "").group_by(keys.c.name_key)
    return select(keys.c.id).where(
        or_(
            keys.c.email_key.in_(emails.having(func.count() > 1)),
            keys.c.name_key.in_(names.having(func.count() > 1)),
        )
    )
