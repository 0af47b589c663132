"""Scenario files: each error says file, line, field and what to write (lines: relance.core.yaml_source)."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from relance.core.yaml_source import Loc, Problem, SourceError, SourceMap, field_name, kind_of, parse_yaml
from relance.scenarios.model import Delay, Journey, Message, Scenario, Trigger

_NOUNS: dict[type[BaseModel], str] = {
    Scenario: "a scenario",
    Journey: "a journey",
    Message: "a message",
    Trigger: "a trigger",
    Delay: "a delay",
}
_EXAMPLES = {
    "scenario": "scenario: referral",
    "journeys": "journeys: with a list of '- id: ...' items",
    "id": "id: post_purchase",
    "trigger": "trigger: {event: purchase}",
    "event": "event: purchase",
    "messages": "messages: with a list of '- id: ...' items",
    "template": "template: referral/post_purchase_invite",
    "delay": "delay: 3 days",
}
_EVENT_FIELDS = {"event", "exit_on", "unless"}


class ScenarioError(SourceError):
    """Scenario files that cannot be loaded; ``problems`` lists every error found."""


def _parse(path: Path) -> tuple[Any, SourceMap]:
    try:
        return parse_yaml(path, empty="start with 'scenario: <id>'")
    except SourceError as error:
        raise ScenarioError(error.problems) from None


# -- pydantic errors in the marketer's words ---------------------------------------------------


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The scenario model found at ``loc`` (e.g. Message for journeys.0.messages.1)."""
    model: type[BaseModel] = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        inner = _model_in(info.annotation) if info else None
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


def _explain(error: dict[str, Any], loc: Loc) -> str:
    kind, last = error["type"], str(loc[-1]) if loc else ""
    value = error.get("input")
    key = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        example = _EXAMPLES.get(last)
        return f"required field missing: add '{last}:'" + (f", e.g. {example}" if example else "")
    if kind == "extra_forbidden":
        return _unknown_field(last, _model_at(loc[:-1]))
    if kind == "string_pattern_mismatch":
        return _pattern_hint(key, str(value))
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        noun = _NOUNS.get(_model_at(loc) or Scenario, "this")
        example = f", e.g. {_EXAMPLES[key]}" if key in _EXAMPLES else ""
        return f"{noun.removeprefix('a ')} needs 'key: value' lines under it, not {kind_of(value)}{example}"
    if kind == "list_type":
        example = f": write [{value}]" if isinstance(value, str) else ": write one '- item' per line"
        return f"expected a list, not {kind_of(value)}{example}"
    if kind == "too_short" and isinstance(value, list):
        noun = {"journeys": "journey", "messages": "message"}.get(last, "item")
        return f"the list is empty: add at least one {noun}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"write true or false (got {value!r})"
    if kind == "string_type" and isinstance(value, bool):
        return "YAML reads this unquoted word as true/false: put it in quotes, e.g. 'no'"
    if kind == "string_type":
        return f"expected text, not {kind_of(value)}: put it in quotes"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"write a whole number (got {value!r})"
    if kind == "enum":
        return _enum_hint(str(error.get("ctx", {}).get("expected", "")), value)
    if kind == "greater_than_equal":
        return f"must be {error['ctx']['ge']} or more (got {value!r})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value) not in message:
        message += f" (got {value!r})"
    return message


def _unknown_field(name: str, model: type[BaseModel] | None) -> str:
    fields = sorted(model.model_fields) if model else []
    close = difflib.get_close_matches(name, fields, n=1)
    if close:
        return f"unknown field '{name}': did you mean '{close[0]}'?"
    if model:
        return f"unknown field '{name}': {_NOUNS.get(model, 'this')} has {', '.join(fields)}"
    return f"unknown field '{name}': remove it"


def _pattern_hint(key: str, value: str) -> str:
    if key in _EVENT_FIELDS:
        rule, example = "an event type uses lowercase letters, digits, '_' and '.'", "order.paid"
        valid = re.fullmatch(r"[a-z][a-z0-9_.]*", value.lower())
    elif key == "template":
        rule, example = (
            "a template name uses letters, digits, '_', '-' and '/'",
            "referral/post_purchase_invite",
        )
        valid = None
    else:
        rule, example = "an id uses lowercase letters, digits and '_'", "post_purchase"
        valid = re.fullmatch(r"[a-z][a-z0-9_]*", value.lower())
    if valid:
        return f"{rule}, starting with a letter: write '{value.lower()}'"
    return f"{rule}, starting with a letter (e.g. {example})"


def _enum_hint(expected: str, value: Any) -> str:
    options = re.findall(r"'([^']*)'", expected)
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f": did you mean '{close[0]}'?" if close else ""
    return f"write {expected} (got {value!r}){hint}"


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _duplicate_id(data: Any, loc: Loc, source: SourceMap) -> Problem | None:
    """The second item of the list at ``loc`` reusing an id, pointed at its own ``id:`` line."""
    items = _at(data, loc)
    if not isinstance(items, list) or not loc:
        return None
    noun = {"journeys": "journey", "messages": "message"}.get(str(loc[-1]), "item")
    first: dict[Any, int] = {}
    for index, item in enumerate(items):
        ident = item.get("id") if isinstance(item, dict) else None
        if ident is None:
            continue
        if ident in first:
            here, there = (*loc, index, "id"), (*loc, first[ident], "id")
            used = f"{field_name(there[:-1])} (line {source.line(there)})"
            message = f"{noun} id '{ident}' is already used by {used}: give each {noun} its own id"
            return Problem(str(source.file), source.line(here), field_name(here), message)
        first[ident] = index
    return None


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    # pydantic adds validator names such as 'function-before[...]' to some locations
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


def _validation_problems(error: ValidationError, data: Any, source: SourceMap) -> list[Problem]:
    problems = []
    for err in error.errors():
        loc = _clean_loc(err["loc"])
        duplicate = _duplicate_id(data, loc, source) if err["type"] == "value_error" else None
        problems.append(
            duplicate
            or Problem(str(source.file), source.line(loc), field_name(loc), _explain(dict(err), loc))
        )
    return sorted(problems, key=lambda p: (p.line, p.field))


# -- files and directories ---------------------------------------------------------------------


def load_with_lines(path: Path) -> tuple[Scenario, SourceMap]:
    path = Path(path)
    data, source = _parse(path)
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(str(path), 1, "file", "expected a mapping starting with 'scenario: <id>'")]
        )
    try:
        return Scenario.model_validate(data), source
    except ValidationError as error:
        raise ScenarioError(_validation_problems(error, data, source)) from None


def load_scenario(path: Path) -> Scenario:
    """One scenario file, or ScenarioError listing every problem with its line."""
    return load_with_lines(path)[0]


def message_line(path: Path, journey_index: int, message_index: int, key: str = "template") -> int:
    """Line of one message's key, for problems found after loading (templates, lint)."""
    _, source = _parse(Path(path))
    return source.line(("journeys", journey_index, "messages", message_index, key))


@dataclass
class ScenarioSet:
    scenarios: list[Scenario] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    sources: dict[str, SourceMap] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    def __len__(self) -> int:
        return len(self.scenarios)

    def get(self, scenario_id: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.scenario == scenario_id), None)

    def journeys_for_event(self, event_type: str) -> list[tuple[Scenario, Journey]]:
        return [(s, j) for s in self.scenarios for j in s.journeys if j.trigger.event_type == event_type]

    def known_event_types(self) -> set[str]:
        return {t for s in self.scenarios for j in s.journeys for t in j.event_types()}

    def line(self, scenario_id: str, loc: Loc) -> int:
        """Line of a location in the file that defined the scenario (0 when unknown)."""
        source = self.sources.get(scenario_id)
        return source.line(loc) if source else 0


def scenario_files(directory: Path) -> list[Path]:
    """``*.yaml`` and ``*.yml`` files, sorted; hidden files (editor backups) are skipped."""
    found = [*Path(directory).glob("*.yaml"), *Path(directory).glob("*.yml")]
    return sorted(p for p in found if not p.name.startswith(".") and p.is_file())


def collect_scenarios(directory: Path) -> tuple[ScenarioSet, list[Problem]]:
    """Every valid scenario of a directory, and the problems of the others (all files are read)."""
    directory = Path(directory)
    if not directory.is_dir():
        return ScenarioSet(), [Problem(str(directory), 0, "directory", "not a directory of scenario files")]
    loaded = ScenarioSet()
    problems: list[Problem] = []
    for path in scenario_files(directory):
        try:
            scenario, source = load_with_lines(path)
        except ScenarioError as error:
            problems += error.problems
            continue
        if scenario.scenario in loaded.files:
            first = loaded.files[scenario.scenario]
            problems.append(
                Problem(
                    str(path), source.line(("scenario",)), "scenario",
                    f"id '{scenario.scenario}' is already used by {first}:"
                    f"{loaded.sources[scenario.scenario].line(('scenario',))}: give each scenario its own id",
                )
            )  # fmt: skip
            continue
        loaded.scenarios.append(scenario)
        loaded.files[scenario.scenario] = path
        loaded.sources[scenario.scenario] = source
    return loaded, problems


def load_scenarios(directory: Path) -> ScenarioSet:
    """Every scenario of a directory, or ScenarioError listing every problem of every file."""
    loaded, problems = collect_scenarios(directory)
    if problems:
        raise ScenarioError(problems)
    return loaded
