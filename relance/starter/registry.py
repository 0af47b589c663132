"""Scenarios reloaded when their files change, so edits apply to new journeys without a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from relance.scenarios import ScenarioSet, load_scenarios
from relance.scenarios.loader import scenario_files


def scenario_registry(directory: Path) -> Callable[[], ScenarioSet]:
    cache: dict[str, object] = {}

    def fingerprint() -> tuple[tuple[str, bytes], ...]:
        # Content, not mtime: an edit within the same clock tick still counts.
        return tuple((f.name, f.read_bytes()) for f in scenario_files(directory))

    def current() -> ScenarioSet:
        stamp = fingerprint()
        if cache.get("stamp") != stamp:
            cache["set"] = load_scenarios(directory)
            cache["stamp"] = stamp
        return cache["set"]  # type: ignore[return-value]

    return current
