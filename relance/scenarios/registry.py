"""Scenarios reloaded when their files change, so edits apply to new journeys without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from relance.scenarios.apply import read_generation
from relance.scenarios.loader import ScenarioSet, load_scenarios, scenario_files

_ATTEMPTS = 40  # × 50 ms: `relance scenarios apply` renames files in milliseconds


def scenario_registry(directory: Path) -> Callable[[], ScenarioSet]:
    cache: dict[str, object] = {}

    def fingerprint() -> tuple[tuple[str, bytes], ...]:
        # Content, not mtime: an edit within the same clock tick still counts.
        return tuple((f.name, f.read_bytes()) for f in scenario_files(directory))

    def current() -> ScenarioSet:
        for _ in range(_ATTEMPTS):
            before = read_generation(directory)
            if before.in_progress and "set" in cache:
                return cache["set"]  # type: ignore[return-value]  # files are being replaced: keep the whole old set
            stamp = fingerprint()
            if cache.get("stamp") == stamp:
                return cache["set"]  # type: ignore[return-value]
            loaded = load_scenarios(directory)
            # Kept only if no apply started or ended meanwhile: never a mix of old and new files.
            if not before.in_progress and read_generation(directory) == before:
                cache["set"], cache["stamp"] = loaded, stamp
                return loaded
            time.sleep(0.05)
        cache["set"], cache["stamp"] = load_scenarios(directory), fingerprint()
        return cache["set"]  # type: ignore[return-value]

    return current
