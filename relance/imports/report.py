"""What an import did: new contacts, updated ones, rejected rows, and the 3-year-rule count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_LISTED = 100_000  # rejected rows kept in the report; a file of only bad rows stays bounded


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


@dataclass
class ImportReport:
    accepted: int = 0  # new contacts
    updated: int = 0  # existing contacts updated
    rejected: list[Rejection] = field(default_factory=list)
    rejected_count: int = 0  # may exceed len(rejected) past MAX_LISTED
    excluded_three_year_rule: int = 0  # imported, but past the 3-year rule: no marketing
    written: bool = False  # whether anything was committed

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED:
            self.rejected.append(Rejection(line, reason))

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "updated": self.updated,
            "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected],
            "excluded_three_year_rule": self.excluded_three_year_rule,
        }

    def add(self, accepted: int, updated: int, excluded: int) -> None:
        self.accepted += accepted
        self.updated += updated
        self.excluded_three_year_rule += excluded
