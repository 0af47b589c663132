"""Text no database can store: the NUL character (PostgreSQL refuses it in text and JSON) and lone
UTF-16 surrogates (they have no UTF-8 form). Checked at every edge: HTTP requests, the Python
starter's events and contacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "text cannot contain the NUL character (\\u0000): remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text contains an unpaired surrogate (such as \\ud800): send valid Unicode"
    return None


def unstorable(value: Any, path: list[str]) -> Iterator[tuple[str, str]]:
    """(field, why) of every string, key or value, that cannot be stored, under ``path``."""
    if isinstance(value, str):
        if (why := problem(value)) is not None:
            yield ".".join(path) or "body", why
    elif isinstance(value, dict):
        for key, item in value.items():
            if (why := problem(key)) is not None:
                yield ".".join([*path, repr(key)]) or "body", f"a field name: {why}"
            else:
                yield from unstorable(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable(item, [*path, str(index)])
