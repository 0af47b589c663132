"""YAML files read with the line of every value, and problems that name file, line and field.

Scenarios, segments and report rules all read YAML this way, so every error a person sees has
the same shape: ``file:line: field: what to write``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Loc = tuple[str | int, ...]
Severity = Literal["error", "warning"]

# Real files have a few hundred nodes; aliases must not expand into millions.
_MAX_NODES = 50_000
_YAML_HINTS = {
    "found character '\\t'": "indent with spaces, not tabs",
    "mapping values are not allowed": "put a space after each ':' and quote values containing ': '",
    "could not find expected ':'": "write 'key: value', and close every quote",
    "found undefined alias": "define the '&anchor' before using '*anchor'",
    "could not determine a constructor": "remove the '!' tag: scenario files use plain YAML",
    "expected a single document": "remove the '---' separator: one scenario per file",
}


@dataclass(frozen=True)
class Problem:
    file: str  # or where the text came from ('api', a default filter's name)
    line: int  # 0 when the problem is not in the file's text (unreadable file, directory, API body)
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        level = "warning: " if self.severity == "warning" else ""
        return f"{where}: {level}{self.field}: {self.message}"


class SourceError(ValueError):
    """A file that cannot be read as YAML; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class SourceMap:
    """Line of every key and list item of one file, by location (``journeys, 0, id``)."""

    file: Path
    lines: dict[Loc, int]

    def line(self, loc: Loc) -> int:
        """Line of ``loc``, or of its nearest ancestor written in the file (a missing key)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1


def field_name(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


def kind_of(value: Any) -> str:
    """A value as the person who wrote it sees it: 'a mapping', 'a list', 'an empty value', 'x'."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return repr(value)


class _Loader(yaml.SafeLoader):
    """SafeLoader: plain data only, no Python objects."""


class _Walk:
    """Records lines by location; finds duplicate keys, odd keys, alias loops and alias bombs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.open: set[int] = set()

    def problem(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.problems.append(Problem(str(self.path), node.start_mark.line + 1, field_name(loc), message))

    def node(self, node: yaml.Node, loc: Loc) -> None:
        self.count += 1
        if self.count > _MAX_NODES:
            raise SourceError(
                [
                    Problem(
                        str(self.path), 1, "file", f"more than {_MAX_NODES} values once aliases are expanded"
                    )
                ]
            )
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in self.open:
            self.problem(node, loc, "this alias contains itself: copy the values instead")
            return
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self.mapping(node, loc)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.node(item, (*loc, index))
        self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> None:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, loc, "a key must be a plain name, not a list or a mapping")
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key == "<<" and key_node.tag.endswith(":merge"):
                self.node(value_node, loc)  # merged keys belong to this mapping
                continue
            if key in seen:
                twice = f"written twice in this mapping (first at line {seen[key]}): keep one"
                self.problem(key_node, (*loc, key), twice)
            seen[key] = line
            self.node(value_node, (*loc, key))
            self.lines[(*loc, key)] = line  # the key's line is where the reader looks


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        problem = Problem(str(path), 0, "file", f"cannot read the file: {error.strerror}")
        raise SourceError([problem]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        bad = raw[error.start]
        raise SourceError(
            [Problem(str(path), line, "file", f"byte {bad:#04x} is not UTF-8: save the file as UTF-8")]
        ) from None


def _yaml_problem(path: Path, error: yaml.YAMLError, text: str) -> Problem:
    if isinstance(error, yaml.reader.ReaderError):
        line = text[: error.position].count("\n") + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        return Problem(
            str(path),
            line,
            "yaml",
            f"invisible character #x{error.character:04x} at column {column}: delete it",
        )
    if not isinstance(error, yaml.MarkedYAMLError):
        return Problem(str(path), 1, "yaml", f"{error}: check the YAML syntax")
    mark = error.problem_mark or error.context_mark
    what = error.problem or error.context or "syntax error"
    line = 1
    if mark is not None:
        line = mark.line + 1
        what += f" at column {mark.column + 1}"
    if error.problem and error.context and error.context_mark and error.context_mark.line + 1 != line:
        what += f" ({error.context} that starts at line {error.context_mark.line + 1})"
    hints = [hint for pattern, hint in _YAML_HINTS.items() if pattern in what]
    hint = hints[0] if hints else "check indentation, colons and quotes"
    return Problem(str(path), line, "yaml", f"{what}: {hint}")


def parse_yaml(path: Path, empty: str) -> tuple[Any, SourceMap]:
    """The file's data and the line of every location in it, or SourceError.

    ``empty`` says what an empty file should start with ('the file is empty: <empty>')."""
    text = _read(path)
    try:
        loader = _Loader(text)  # the reader rejects control characters right away
    except yaml.YAMLError as error:
        raise SourceError([_yaml_problem(path, error, text)]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SourceError([Problem(str(path), 1, "file", f"the file is empty: {empty}")])
        walk = _Walk(path)
        walk.node(node, ())
        if walk.problems:
            raise SourceError(walk.problems)
        data = loader.construct_document(node)
    except yaml.YAMLError as error:
        raise SourceError([_yaml_problem(path, error, text)]) from None
    except RecursionError:
        raise SourceError([Problem(str(path), 1, "yaml", "values are nested too deeply")]) from None
    finally:
        loader.dispose()
    return data, SourceMap(path, walk.lines)
