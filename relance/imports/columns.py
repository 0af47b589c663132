"""The documented header: which columns exist, and a clear report when a file's header is wrong."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from relance.imports.errors import ImportFileError, Problem

FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "time_zone",
    "last_purchase_at",
)
CHANNELS = ("email", "sms")
PURPOSES = ("marketing", "transactional", "legal")
CONSENTS = tuple(f"consent_{c}_{p}" for c in CHANNELS for p in PURPOSES)
EXPECTED = FIELDS + CONSENTS
ATTRIBUTE_PREFIX = "attr_"


def expected_list() -> str:
    return ", ".join((*EXPECTED, f"{ATTRIBUTE_PREFIX}<name>"))


@dataclass(frozen=True)
class Columns:
    """Where each known field sits in a row; attributes by name; consents by (channel, purpose)."""

    names: tuple[str, ...]  # normalised header, in file order
    fields: dict[str, int] = field(default_factory=dict)
    consents: dict[tuple[str, str], int] = field(default_factory=dict)
    attributes: dict[str, int] = field(default_factory=dict)


def normalise(name: str) -> str:
    return name.strip().strip("\ufeff").strip().lower()


def read_header(raw: list[str]) -> Columns:
    """Check the header names; raise one error listing every wrong one with a suggestion."""
    names = tuple(normalise(n) for n in raw)
    problems: list[Problem] = []
    fields: dict[str, int] = {}
    consents: dict[tuple[str, str], int] = {}
    attributes: dict[str, int] = {}
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        position = f"column {index + 1}"
        if name in seen:
            problems.append(
                Problem(name or position, f"'{name}' appears twice: columns {seen[name] + 1} and {index + 1}")
            )
            continue
        seen[name] = index
        if name in FIELDS:
            fields[name] = index
        elif name in CONSENTS:
            _, channel, purpose = name.split("_", 2)
            consents[(channel, purpose)] = index
        elif name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX):
            attributes[name[len(ATTRIBUTE_PREFIX) :]] = index
        elif not name:
            problems.append(Problem(position, f"{position} has no name: name it or remove the column"))
        else:
            problems.append(Problem(name, _unknown(raw[index].strip())))
    if "external_id" not in fields and "email" not in fields:
        problems.append(
            Problem(
                "header",
                "the file needs an 'email' or an 'external_id' column (or both) to identify contacts",
            )
        )
    if problems:
        raise ImportFileError(
            "the header is wrong: "
            + "; ".join(p.message for p in problems)
            + f". Expected columns (any order, case-insensitive): {expected_list()}",
            line=1,
            problems=problems,
        )
    return Columns(names=names, fields=fields, consents=consents, attributes=attributes)


def _unknown(shown: str) -> str:
    name = normalise(shown)
    guess = difflib.get_close_matches(name, EXPECTED, n=1, cutoff=0.6)
    if guess:
        hint = f"did you mean '{guess[0]}'?"
    else:
        hint = f"to keep it as a contact attribute, name it '{ATTRIBUTE_PREFIX}{name}'"
    return f"unknown column '{shown}': {hint}"
