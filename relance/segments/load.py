"""Segment files (YAML or JSON) and API bodies, checked with errors a marketer can act on.

Every problem says where (file and line when there is a file), which field, and what to
write instead; an unknown field names the known ones, with a did-you-mean.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from relance.core.yaml_source import Loc, Problem, SourceError, SourceMap, field_name, kind_of, parse_yaml
from relance.segments.model import (
    AgeRange,
    AttributeCondition,
    BestLeads,
    Bookings,
    ConsecutiveRejections,
    Count,
    Criteria,
    Period,
    ScoreRange,
    Segment,
)

__all__ = ["SegmentError", "load", "parse"]

_EXAMPLES: dict[str, str] = {
    "club": "club: [Claramania, Lyon]",
    "status": "status: client",
    "civility": "civility: [mrs, miss]",
    "age": "age: {min: 25, max: 50}",
    "subscriptions_or_packs": "subscriptions_or_packs: [annual, ten_visits]",
    "subscriptions_and_packs": "subscriptions_and_packs: [annual, option]",
    "creation_channel": "creation_channel: [online, kiosk]",
    "visits": "visits: {min: 3, days: 15}",
    "bookings": "bookings: {min: 1, days: 30, activities: [yoga]}",
    "rejection_group": "rejection_group: [insufficient_funds]",
    "consecutive_rejections": "consecutive_rejections: {group: insufficient_funds, min: 2}",
    "purchase": "purchase: {days: 90}",
    "badge": "badge: true",
    "attributes": "attributes: {level: gold, points: {gte: 100}}",
    "list": "list: Lyon club",
    "email_status": "email_status: soft_bounced",
    "contact_method": "contact_method: phone",
    "score": "score: {min: 10}",
    "best_leads": "best_leads: 50",
    "days": "days: 15",
    "min": "min: 3",
    "group": "group: insufficient_funds",
}
_MODELS: dict[str, type[BaseModel]] = {
    "age": AgeRange,
    "visits": Count,
    "bookings": Bookings,
    "consecutive_rejections": ConsecutiveRejections,
    "purchase": Period,
    "score": ScoreRange,
    "best_leads": BestLeads,
}


class SegmentError(ValueError):
    """A segment that cannot be used; ``problems`` lists each with field and advice.

    A problem's ``file`` is the segment's source (a file, 'api', a default filter's name); its
    ``line`` is 0 when the segment is not written in a file."""

    def __init__(self, problems: list[Problem], status: int = 422) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems, self.status = problems, status


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model whose fields are written at ``loc`` (criteria at the top, visits inside…)."""
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return Criteria
    if names[0] == "attributes":
        return AttributeCondition if len(names) == 2 else None
    return _MODELS.get(names[0]) if len(names) == 1 else None


def _fields(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _unknown(name: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return f"unknown field '{name}': remove it"
    known = _fields(model)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    what = "criteria" if model is Criteria else "fields"
    return f"unknown field '{name}': {hint}the known {what} are {', '.join(known)}"


def _explain(error: dict[str, Any], loc: Loc) -> str:
    kind, value = error["type"], error.get("input")
    criterion = next((str(p) for p in loc if isinstance(p, str)), "")
    last = str(loc[-1]) if loc else ""
    example = _EXAMPLES.get(last) or _EXAMPLES.get(criterion)
    eg = f", e.g. {example}" if example else ""
    if kind == "extra_forbidden":
        return _unknown(last, _model_at(loc[:-1]))
    if kind == "missing":
        return f"required field missing: add '{last}:'{eg}"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected 'key: value' pairs, not {kind_of(value)}{eg}"
    if kind == "list_type":
        return f"expected a value or a list of values, not {kind_of(value)}{eg}"
    if kind == "too_short":
        return f"give at least one value{eg}"
    if kind == "string_type":
        return f"expected text, not {kind_of(value)}{eg}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"write true or false (got {value!r})"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"write a whole number (got {kind_of(value)}){eg}"
    if kind in {"float_type", "float_parsing"}:
        return f"write a number (got {kind_of(value)})"
    if kind in {"date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"}:
        return f"write a date as YYYY-MM-DD (got {value!r})"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        close = difflib.get_close_matches(str(value), [o.strip(" '") for o in expected.split(",")], n=1)
        hint = f": did you mean '{close[0]}'?" if close else ""
        return f"write {expected.replace(' or ', ', ')} (got {value!r}){hint}"
    if kind == "greater_than_equal":
        return f"must be {error['ctx']['ge']} or more (got {value!r})"
    if kind == "less_than_equal":
        return f"must be {error['ctx']['le']} or less (got {value!r})"
    if kind == "string_too_long":
        return f"too long: at most {error['ctx']['max_length']} characters"
    return str(error["msg"]).removeprefix("Value error, ")


def _clean(loc: tuple[Any, ...]) -> Loc:
    # pydantic puts union members and validator names in locations; the reader never wrote them
    kept: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in {"bool", "str", "int", "float", "list[str]"}):
            continue
        kept.append(part)
    return tuple(kept)


def _problems(error: ValidationError, source: str, lines: SourceMap | None) -> list[Problem]:
    found: dict[tuple[int, str], Problem] = {}
    for err in error.errors():
        loc = _clean(err["loc"])
        line = lines.line(loc) if lines else 0
        problem = Problem(source, line, field_name(loc), _explain(dict(err), loc))
        # a union (badge: true or values) reports once per member: keep the first word on a field
        found.setdefault((line, problem.field), problem)
    return sorted(found.values(), key=lambda p: (p.line, p.field))


_MANY = TypeAdapter(list[Criteria])


def parse(data: dict[str, Any] | list[Any], source: str = "api", lines: SourceMap | None = None) -> Segment:
    """A segment from plain data: a mapping of criteria, or a list of them (all must hold)."""
    try:
        if isinstance(data, dict):
            criteria: list[Criteria] = [Criteria.model_validate(data)]
        elif isinstance(data, list):
            criteria = _MANY.validate_python(data)
        else:
            raise SegmentError(
                [
                    Problem(
                        source, 1 if lines else 0, "segment",
                        f"expected criteria as 'key: value' pairs (e.g. {_EXAMPLES['status']}), "
                        f"not {kind_of(data)}",
                    )
                ]
            )  # fmt: skip
    except ValidationError as error:
        raise SegmentError(_problems(error, source, lines)) from None
    return Segment(criteria=tuple(c for c in criteria if c.given()), source=source)


def _json_problem(path: Path, error: json.JSONDecodeError) -> Problem:
    return Problem(str(path), error.lineno, "json", f"{error.msg} at column {error.colno}")


def load(path: Path) -> Segment:
    """A segment file (``.yaml``, ``.yml`` or ``.json``), or SegmentError with file and line."""
    path = Path(path)
    try:
        # JSON is YAML: this gives lines for both
        data, lines = parse_yaml(path, empty=f"write criteria, e.g. {_EXAMPLES['status']}")
    except SourceError as error:
        problems = error.problems
        if path.suffix == ".json" and problems and problems[0].field == "yaml":
            try:  # JSON YAML cannot read (tabs): the JSON reader has the last word
                data, lines = json.loads(path.read_text(encoding="utf-8")), None
            except json.JSONDecodeError as json_error:
                raise SegmentError([_json_problem(path, json_error)]) from None
        else:
            raise SegmentError(problems) from None
    return parse(data, str(path), lines)
