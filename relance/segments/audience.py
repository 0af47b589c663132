"""Which contacts a segment selects: ``resolve`` a segment from any spec, ``audience`` its
``SELECT contacts.id`` statement (usable inside ``INSERT … SELECT``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relance.segments.builtins import builtin, is_builtin
from relance.segments.load import load, parse
from relance.segments.model import Segment

if TYPE_CHECKING:
    from sqlalchemy import Select


Spec = Segment | dict[str, Any] | list[Any] | str | Path


def resolve(spec: Spec) -> Segment:
    """A segment from a Segment, plain data, a default filter's name, or a file path."""
    if isinstance(spec, Segment):
        return spec
    if isinstance(spec, dict | list):
        return parse(spec, source="segment")
    if isinstance(spec, Path):
        return load(spec)
    if is_builtin(spec) or not spec.endswith((".yaml", ".yml", ".json")):
        return builtin(spec)
    return load(Path(spec))


def audience(spec: Spec, now: datetime) -> Select[int]:
    """``SELECT contacts.id`` of the segment at ``now`` (a timezone-aware reference time).

    ``spec`` is a Segment, criteria as data, a default filter's name or a segment file.
    """
    from relance.segments.compile import contact_ids  # SQLAlchemy: not for the CLI's start

    return contact_ids(resolve(spec), now)
