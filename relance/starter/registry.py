"""Scenarios reloaded when their files change, so edits apply to new journeys without a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from relance.scenarios import ScenarioSet, load_scenarios


def scenario_registry(directory: Path) -> Callable[[], ScenarioSet]:
    cache: dict[str, object] = {}

    def fingerprint() -> tuple[tuple[str, int, int], ...]:
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)

    def current() -> ScenarioSet:
        stamp = fingerprint()
        if cache.get("stamp") != stamp:
            cache["set"] = load_scenarios(directory)
            cache["stamp"] = stamp
        return cache["set"]  # type: ignore[return-value]

    return current
