"""The one error type of the importer: the file as a whole cannot be imported."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


class ImportFileError(ValueError):
    """The file cannot be read or imported; the message says where and what to change.

    ``line`` is the 1-based line of the file when the problem is at one place;
    ``problems`` lists every field-level issue (wrong header names, …).
    """

    def __init__(self, message: str, line: int | None = None, problems: list[Problem] | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line
        self.problems = problems or []


class SetupError(RuntimeError):
    """The import cannot start as configured (Temporal unreachable, unknown import event): nothing written."""
