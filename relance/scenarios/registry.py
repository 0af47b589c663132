"""Scenarios reloaded when their files change, so edits apply to new journeys without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relance.scenarios.apply import read_generation
from relance.scenarios.loader import ScenarioSet, load_scenarios, scenario_files

_ATTEMPTS = 40  # × 50 ms: `relance scenarios apply` renames files in milliseconds


_Stamp = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class _Cached:
    scenarios: ScenarioSet
    stamp: _Stamp


def scenario_registry(directory: Path) -> Callable[[], ScenarioSet]:
    cache: _Cached | None = None

    def fingerprint() -> _Stamp:
        # Content, not mtime: an edit within the same clock tick still counts.
        return tuple((f.name, f.read_bytes()) for f in scenario_files(directory))

    def current() -> ScenarioSet:
        nonlocal cache
        for _ in range(_ATTEMPTS):
            before = read_generation(directory)
            if before.in_progress and cache is not None:
                return cache.scenarios  # files are being replaced: keep the whole old set
            stamp = fingerprint()
            if cache is not None and cache.stamp == stamp:
                return cache.scenarios
            loaded = load_scenarios(directory)
            # Kept only if no apply started or ended meanwhile: never a mix of old and new files.
            if not before.in_progress and read_generation(directory) == before:
                cache = _Cached(loaded, stamp)
                return loaded
            time.sleep(0.05)
        cache = _Cached(load_scenarios(directory), fingerprint())
        return cache.scenarios

    return current
