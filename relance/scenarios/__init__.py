"""Scenario files: loading with line numbers, validation, the set of loaded scenarios."""

from relance.scenarios.loader import (
    Problem,
    ScenarioError,
    ScenarioSet,
    SourceMap,
    collect_scenarios,
    load_scenario,
    load_scenarios,
)
from relance.scenarios.validate import validate_directory

__all__ = [
    "Problem",
    "ScenarioError",
    "ScenarioSet",
    "SourceMap",
    "collect_scenarios",
    "load_scenario",
    "load_scenarios",
    "validate_directory",
]
