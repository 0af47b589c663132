"""Whole-directory validation: scenario files, and the templates their messages use."""

from __future__ import annotations

from pathlib import Path

from relance.scenarios.loader import Problem, ScenarioError, load_scenarios, message_line
from relance.templates import TemplateStore


def validate_directory(scenarios_dir: Path, templates_dir: Path) -> list[Problem]:
    try:
        scenarios = load_scenarios(scenarios_dir)
    except ScenarioError as error:
        return error.problems
    store = TemplateStore(templates_dir)
    problems: list[Problem] = []
    for scenario in scenarios:
        path = scenarios.files[scenario.scenario]
        for j, journey in enumerate(scenario.journeys):
            for m, message in enumerate(journey.messages):
                field = f"journeys[{j}].messages[{m}].template"
                for found in store.check(message.template, message.channel):
                    problems.append(Problem(str(path), message_line(path, j, m), field, f"{found}"))
    return problems
