"""What a campaign must state before it goes live (M-09), checked by ``scenarios apply``.

- An explicit name: marketers find their campaigns by it in reports, the map and the UI.
- The criteria the organisation requires of every audience (``RELANCE_REQUIRED_CRITERIA``,
  e.g. ``club`` when one instance serves several clubs): each journey's entry segment must
  state them; any other criterion may be added to narrow it.
- A message of purpose ``legal`` goes even to contacts who refused marketing: bringing one
  in asks for an explicit confirmation (``--confirm-legal``, or a yes at the terminal).
"""

from __future__ import annotations

from relance.core.yaml_source import Loc, Problem, field_name
from relance.models.journey import Purpose
from relance.scenarios.loader import ScenarioSet
from relance.segments.audience import resolve
from relance.segments.load import SegmentError


def campaign_problems(scenarios: ScenarioSet, required_criteria: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    for scenario in scenarios:
        file = str(scenarios.files[scenario.scenario])
        for j, journey in enumerate(scenario.journeys):
            if not journey.name.strip():
                loc: Loc = ("journeys", j, "id")
                problems.append(
                    Problem(
                        file, scenarios.line(scenario.scenario, loc), f"journeys[{j}].name",
                        f"journey '{journey.id}' needs an explicit name before it goes live: add "
                        "'name: ...' (reports, the map and the Temporal UI show it)",
                    )
                )  # fmt: skip
            if not required_criteria:
                continue
            given: set[str] = set()
            if journey.trigger.segment is not None:
                try:
                    given = resolve(journey.trigger.segment).names()
                except SegmentError:
                    pass  # reported by validation
            missing = [c for c in required_criteria if c not in given]
            if missing:
                loc = ("journeys", j, "trigger")
                problems.append(
                    Problem(
                        file, scenarios.line(scenario.scenario, loc), field_name(loc),
                        f"every campaign must state {', '.join(missing)} (RELANCE_REQUIRED_CRITERIA): "
                        f"add 'segment: {{{missing[0]}: [...]}}' to the trigger; "
                        "other criteria may narrow it further",
                    )
                )  # fmt: skip
    return problems


def new_legal_messages(old: ScenarioSet, new: ScenarioSet) -> list[str]:
    """``scenario/journey/message`` of legal-purpose messages the new set brings in."""

    def legal(scenarios: ScenarioSet) -> set[str]:
        return {
            f"{s.scenario}/{j.id}/{m.id}"
            for s in scenarios
            for j in s.journeys
            for m in j.messages
            if m.purpose is Purpose.LEGAL
        }

    return sorted(legal(new) - legal(old))
