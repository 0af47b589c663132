"""Default filters (C-04): named segments every account has, like the seed platform's.

A few take an argument after a colon: ``best_leads:50`` (the 50 best), ``contact_method:chat``
(any method, custom ones included).
"""

from __future__ import annotations

import difflib
from typing import Any

from relance.core.yaml_source import Problem
from relance.segments.load import SegmentError, parse
from relance.segments.model import Segment

__all__ = ["BUILTINS", "builtin", "is_builtin"]

BEST_LEADS_TOP = 100
CONTACT_METHODS = ("phone", "form", "chat")

# name: (what it holds, its criteria)
BUILTINS: dict[str, tuple[str, dict[str, Any]]] = {
    "all": ("every contact, whatever its origin", {}),
    "possible_duplicates": (
        "same email (any case) or same first and last name (accents, case and spaces aside)",
        {"possible_duplicates": True},
    ),
    "unsubscribed": ("contacts who asked for no more marketing", {"unsubscribed": True}),
    "bounced": ("email soft or hard bounced", {"email_status": ["soft_bounced", "hard_bounced"]}),
    "soft_bounced": ("last email soft bounced (temporary)", {"email_status": "soft_bounced"}),
    "hard_bounced": ("email address invalid (hard bounce)", {"email_status": "hard_bounced"}),
    "followed": ("contacts marked to follow (attribute followed: true)", {"followed": True}),
    "best_leads": (
        f"the {BEST_LEADS_TOP} best scored leads (best_leads:N for another number)",
        {"best_leads": BEST_LEADS_TOP},
    ),
    **{
        f"contact_method:{method}": (f"contacted by {method}", {"contact_method": method})
        for method in CONTACT_METHODS
    },
}
_PARAMETRISED = ("best_leads:", "contact_method:")


def is_builtin(name: str) -> bool:
    return name in BUILTINS or name.startswith(_PARAMETRISED)


def builtin(name: str) -> Segment:
    """The default filter of that name, or SegmentError naming the known ones."""
    if name in BUILTINS:
        return parse(BUILTINS[name][1], source=name)
    head, _, argument = name.partition(":")
    if head == "best_leads" and argument.isdigit() and int(argument) > 0:
        return parse({"best_leads": int(argument)}, source=name)
    if head == "contact_method" and argument.strip():
        return parse({"contact_method": argument.strip()}, source=name)
    close = difflib.get_close_matches(name, list(BUILTINS), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    message = (
        f"no default filter named '{name}': {hint}the default filters are {', '.join(BUILTINS)}, "
        "best_leads:N and contact_method:NAME; or give a segment file (.yaml, .yml or .json)"
    )
    raise SegmentError([Problem(name, 0, "segment", message)], status=404)
