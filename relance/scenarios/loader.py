"""Scenario YAML with line numbers: every error says file, line, field and what to write."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from relance.models.scenario import Delay, Journey, Message, Scenario, Trigger

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {self.field}: {prefix}{self.message}"


class ScenarioError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps nodes, so values can be traced back to their line."""


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int], dupes: list[tuple[Path_, int]]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dupes.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out, dupes)
            # The key's line is where a marketer looks; nested values keep their own.
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, dupes)


def field_name(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


_KNOWN_FIELDS = sorted(
    {
        name
        for model in (Scenario, Journey, Message, Trigger, Delay)
        for name in model.model_fields  # type: ignore[attr-defined]
    }
)


def _explain(error: dict[str, Any], model_fields: list[str]) -> str:
    kind, loc = error["type"], error["loc"]
    last = str(loc[-1]) if loc else ""
    if kind == "missing":
        return f"required field missing: add '{last}:'"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(last, model_fields, n=1)
        hint = f": did you mean '{close[0]}'?" if close else ""
        return f"unknown field '{last}'{hint}"
    if kind == "string_pattern_mismatch" and last in {"id", "scenario"}:
        return "use lowercase letters, digits and '_', starting with a letter (e.g. post_purchase)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in {"model_type", "list_type", "dict_type"}:
        value = error["input"]
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value) not in message:
            return f"{message} (got {value!r})"
    return message


def _locate(lines: dict[Path_, int], loc: Path_) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _clean_loc(loc: tuple[Any, ...]) -> Path_:
    # pydantic adds validator names such as 'function-before[...]' to some locations
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


def parse_yaml(path: Path) -> tuple[Any, dict[Path_, int]]:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        column = f", column {mark.column + 1}" if mark else ""
        what = error.problem or "syntax error"
        if error.context and error.context_mark and error.context_mark is not mark:
            what += f" ({error.context} at line {error.context_mark.line + 1})"
        raise ScenarioError(
            [Problem(str(path), line, "yaml", f"{what}{column}: check indentation, colons and quotes")]
        ) from None
    if node is None:
        raise ScenarioError([Problem(str(path), 1, "file", "the file is empty: start with 'scenario: <id>'")])
    lines: dict[Path_, int] = {}
    dupes: list[tuple[Path_, int]] = []
    _lines(node, (), lines, dupes)
    if dupes:
        raise ScenarioError(
            [
                Problem(str(path), line, field_name(loc), "written twice in this mapping: keep one")
                for loc, line in dupes
            ]
        )
    data = _Loader(text).get_single_data()
    return data, lines


def load_scenario(path: Path) -> Scenario:
    data, lines = parse_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(str(path), 1, "file", "expected a mapping starting with 'scenario: <id>'")]
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        problems = []
        for err in error.errors():
            loc = _clean_loc(err["loc"])
            problems.append(
                Problem(
                    str(path),
                    _locate(lines, loc),
                    field_name(loc),
                    _explain(dict(err), _KNOWN_FIELDS),
                )
            )
        raise ScenarioError(problems) from None


def message_line(path: Path, journey_index: int, message_index: int, key: str = "template") -> int:
    """Line of one message's key, for problems found after loading (templates, lint)."""
    _, lines = parse_yaml(path)
    return _locate(lines, ("journeys", journey_index, "messages", message_index, key))


@dataclass
class ScenarioSet:
    scenarios: list[Scenario] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    def __len__(self) -> int:
        return len(self.scenarios)

    def get(self, scenario_id: str) -> Scenario | None:
        return next((s for s in self.scenarios if s.scenario == scenario_id), None)

    def journeys_for_event(self, event_type: str) -> list[tuple[Scenario, Journey]]:
        return [(s, j) for s in self.scenarios for j in s.journeys if j.trigger.event == event_type]

    def known_event_types(self) -> set[str]:
        return {t for s in self.scenarios for j in s.journeys for t in j.event_types()}


def scenario_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_scenarios(directory: Path) -> ScenarioSet:
    """Every scenario of a directory, or ScenarioError listing every problem of every file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScenarioError([Problem(str(directory), 1, "directory", "not a directory of scenario files")])
    loaded = ScenarioSet()
    problems: list[Problem] = []
    for path in scenario_files(directory):
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            problems += error.problems
            continue
        if scenario.scenario in loaded.files:
            problems.append(
                Problem(
                    str(path), 1, "scenario",
                    f"id '{scenario.scenario}' is already used by {loaded.files[scenario.scenario]}",
                )
            )  # fmt: skip
            continue
        loaded.scenarios.append(scenario)
        loaded.files[scenario.scenario] = path
    if problems:
        raise ScenarioError(problems)
    return loaded
