"""Possible duplicates (C-04): the same email whatever its case, or the same first and last name
once accents, case, spaces, hyphens, apostrophes and dots are set aside.

Written with ``lower`` and ``replace`` only, so SQLite and PostgreSQL agree: SQLite's ``lower``
knows ASCII only, so accented capitals are mapped before it runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, func, literal, or_, select

from relance.models.tables.contact import Contact

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


_CHUNK = 12  # replacements per level: SQLite's parser overflows on ~70 nested calls


def _replaced(expr: ColumnElement[Any], pairs: list[tuple[str, str]]) -> ColumnElement[Any]:
    for old, new in pairs:
        expr = func.replace(expr, literal(old), literal(new))
    return expr


def _name_keys() -> FromClause:
    """``(id, email_key, name_key)`` of every contact; the name key is built over nested subqueries."""
    pairs = list(ACCENTS.items())
    raw: ColumnElement[Any] = Contact.first_name + Contact.last_name  # NULL when a name is missing
    level = select(
        Contact.id.label("id"),
        func.lower(Contact.email).label("email_key"),
        _replaced(raw, pairs[:_CHUNK]).label("name_key"),
    ).subquery()
    rest = pairs[_CHUNK:]
    while rest:
        chunk, rest = rest[:_CHUNK], rest[_CHUNK:]
        key = _replaced(level.c.name_key, chunk)
        if not rest:
            key = _replaced(func.lower(key), [(sep, "") for sep in SEPARATORS])
        level = select(level.c.id, level.c.email_key, key.label("name_key")).subquery()
    return level.alias("keys")


def duplicate_ids() -> Select[int]:
    """Ids of contacts sharing their email or their normalised name with another contact."""
    keys = _name_keys()
    # grouped on the subquery's columns: PostgreSQL would not see two bound copies as one expression
    emails = select(keys.c.email_key).where(keys.c.email_key.is_not(None)).group_by(keys.c.email_key)
    names = select(keys.c.name_key).where(keys.c.name_key != "").group_by(keys.c.name_key)
    return select(keys.c.id).where(
        or_(
            keys.c.email_key.in_(emails.having(func.count() > 1)),
            keys.c.name_key.in_(names.having(func.count() > 1)),
        )
    )
