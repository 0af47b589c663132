"""Scenario files: loading with line numbers, validation, the set of loaded scenarios."""

from relance.scenarios.loader import (
    Problem,
    ScenarioError,
    ScenarioSet,
    load_scenario,
    load_scenarios,
)

__all__ = ["Problem", "ScenarioError", "ScenarioSet", "load_scenario", "load_scenarios"]
