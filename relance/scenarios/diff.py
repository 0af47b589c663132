"""What changes between two sets of scenarios, journey by journey and message by message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from relance.scenarios.loader import ScenarioSet
from relance.scenarios.model import Delay, Journey, Message, Scenario
from relance.scenarios.timing import Timing, compact, span, timings, trigger_label

ChangeKind = Literal["added", "removed", "changed", "moved"]
Status = Literal["added", "removed", "changed", "unchanged"]

RUNNING_JOURNEYS = (
    "Running journeys are not affected: each keeps the scenario version it started with. "
    "These changes apply to journeys that start once the new files are loaded."
)
# Compared structurally (by id), not as plain fields.
_STRUCTURE = {"id", "journeys", "messages"}


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    text: str  # the whole line a marketer reads, e.g. "journey x: message y: delay 7 days → 10 days"
    journey: str | None = None
    message: str | None = None
    field: str | None = None
    old: Any = None  # JSON values
    new: Any = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "journey": self.journey,
            "message": self.message,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "text": self.text,
        }


@dataclass
class ScenarioDiff:
    scenario: str
    status: Status
    old_version: str | None
    new_version: str | None
    old_file: Path | None
    new_file: Path | None
    changes: list[Change] = field(default_factory=list)

    def heading(self) -> str:
        if self.status == "added":
            return f"scenario {self.scenario} added (version {self.new_version})"
        if self.status == "removed":
            return f"scenario {self.scenario} removed (version {self.old_version})"
        return f"scenario {self.scenario}: version {self.old_version} → {self.new_version}"

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "status": self.status,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "old_file": str(self.old_file) if self.old_file else None,
            "new_file": str(self.new_file) if self.new_file else None,
            "changes": [c.as_json() for c in self.changes],
        }


@dataclass
class SetDiff:
    scenarios: list[ScenarioDiff]

    @property
    def identical(self) -> bool:
        return all(s.status == "unchanged" for s in self.scenarios)

    @property
    def differing(self) -> list[ScenarioDiff]:
        return [s for s in self.scenarios if s.status != "unchanged"]

    def lines(self) -> list[str]:
        """The human summary: a heading per differing scenario, one indented line per change."""
        out: list[str] = []
        for scenario in self.differing:
            out.append(scenario.heading())
            out += [f"  {change.text}" for change in scenario.changes]
        return out

    def summary(self) -> str:
        if self.identical:
            count = len(self.scenarios)
            return f"no differences ({count} scenario{'s' if count != 1 else ''} compared)"
        changes = sum(len(s.changes) for s in self.differing)
        count = len(self.differing)
        scenarios = "1 scenario differs" if count == 1 else f"{count} scenarios differ"
        return f"{scenarios}: {changes} change{'s' if changes != 1 else ''}.\n{RUNNING_JOURNEYS}"

    def as_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "running_journeys_affected": False,
            "running_journeys": RUNNING_JOURNEYS,
            "scenarios": [s.as_json() for s in self.scenarios],
        }


def diff_sets(old: ScenarioSet, new: ScenarioSet) -> SetDiff:
    """Scenarios matched by id (a scenario moved to another file is the same scenario)."""
    ids = [s.scenario for s in old] + [s.scenario for s in new if old.get(s.scenario) is None]
    result: list[ScenarioDiff] = []
    for scenario_id in sorted(ids):
        before, after = old.get(scenario_id), new.get(scenario_id)
        old_file, new_file = old.files.get(scenario_id), new.files.get(scenario_id)
        if before is None and after is not None:
            changes = [_journey_added(j) for j in after.journeys]
            result.append(ScenarioDiff(scenario_id, "added", None, after.version, None, new_file, changes))
        elif after is None and before is not None:
            changes = [Change("removed", f"journey {j.id} removed", journey=j.id) for j in before.journeys]
            result.append(ScenarioDiff(scenario_id, "removed", before.version, None, old_file, None, changes))
        elif before is not None and after is not None:
            changes = diff_scenarios(before, after)
            status: Status = "changed" if changes or before.version != after.version else "unchanged"
            if status == "changed" and not changes:
                changes = [Change("changed", "changed (the files differ in a way not listed here)")]
            result.append(
                ScenarioDiff(scenario_id, status, before.version, after.version, old_file, new_file, changes)
            )
    return SetDiff(result)


def diff_scenarios(old: Scenario, new: Scenario) -> list[Change]:
    changes = [
        Change("changed", f"{name} {_show(a)} → {_show(b)}", field=name, old=_json(a), new=_json(b))
        for name, a, b in _fields(old, new)
    ]
    old_journeys = {j.id: j for j in old.journeys}
    new_journeys = {j.id: j for j in new.journeys}
    for journey in old.journeys:
        if journey.id not in new_journeys:
            count = len(journey.messages)
            text = f"journey {journey.id} removed (it had {count} message{'s' if count != 1 else ''})"
            changes.append(Change("removed", text, journey=journey.id))
    for journey in new.journeys:
        before = old_journeys.get(journey.id)
        changes += [_journey_added(journey)] if before is None else _diff_journeys(before, journey)
    return changes


def _journey_added(journey: Journey) -> Change:
    count = len(journey.messages)
    text = (
        f"journey {journey.id} added: trigger {trigger_label(journey.trigger)}, "
        f"{count} message{'s' if count != 1 else ''}"
    )
    return Change("added", text, journey=journey.id)


def _diff_journeys(old: Journey, new: Journey) -> list[Change]:
    prefix = f"journey {new.id}"
    changes: list[Change] = []
    for name, a, b in _nested_fields(old, new):
        text = f"{prefix}: {name} {_show(a)} → {_show(b)}"
        changes.append(Change("changed", text, new.id, None, name, _json(a), _json(b)))
    old_messages = {m.id: m for m in old.messages}
    new_messages = {m.id: m for m in new.messages}
    old_at = dict(zip(old_messages, timings(old), strict=True))
    new_at = dict(zip(new_messages, timings(new), strict=True))
    for message in old.messages:
        if message.id not in new_messages:
            text = f"{prefix}: message {message.id} removed (was at {old_at[message.id].label()})"
            changes.append(Change("removed", text, new.id, message.id))
    kept_old = [m for m in old_messages if m in new_messages]
    kept_new = [m for m in new_messages if m in old_messages]
    if kept_old != kept_new:
        text = f"{prefix}: messages reordered: {', '.join(kept_old)} → {', '.join(kept_new)}"
        changes.append(Change("changed", text, new.id, None, "order", kept_old, kept_new))
    for message in new.messages:
        before = old_messages.get(message.id)
        where = f"{prefix}: message {message.id}"
        if before is None:
            text = f"{where} added: {_describe(message)}, at {new_at[message.id].label()}"
            changes.append(Change("added", text, new.id, message.id))
            continue
        fields = _fields(before, message)
        for name, a, b in fields:
            text = f"{where}: {name} {_show(a)} → {_show(b)}"
            changes.append(Change("changed", text, new.id, message.id, name, _json(a), _json(b)))
        was, now = old_at[message.id], new_at[message.id]
        own_timing = {"delay", "after", "before_date", "after_date", "at"}
        if was != now and not any(name in own_timing for name, _, _ in fields):
            # Its own timing is unchanged, but a message it follows moved: say where it lands now.
            text = f"{where}: now at {now.label()} (was {was.label()}), after a message that moved"
            changes.append(Change("moved", text, new.id, message.id, "offset", _at(was), _at(now)))
    return changes


def _at(timing: Timing) -> dict[str, Any]:
    return {"seconds": _seconds(timing.delta), "date": timing.date, "at": timing.at}


def _describe(message: Message) -> str:
    what = f"{message.channel.value} {message.template}"
    if getattr(message, "date_offset", None) is not None:
        return what  # timed from a date: the time that follows says it all
    return f"{what}, {span(message.delay.total)} after the {message.after.value}"


def _fields(old: BaseModel, new: BaseModel) -> list[tuple[str, Any, Any]]:
    """Fields whose value differs, in the model's order; fields only one side knows compare to None."""
    names = [*type(new).model_fields, *(n for n in type(old).model_fields if n not in type(new).model_fields)]
    found = []
    for name in names:
        if name in _STRUCTURE:
            continue
        a, b = getattr(old, name, None), getattr(new, name, None)
        if _json(a) != _json(b):
            found.append((name, a, b))
    return found


def _nested_fields(old: BaseModel, new: BaseModel, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Like _fields, descending into models on both sides: 'trigger status.to', 'trigger threshold.count'."""
    found: list[tuple[str, Any, Any]] = []
    for name, a, b in _fields(old, new):
        info = type(new).model_fields.get(name)
        label = (info.alias if info and info.alias else name) if prefix else name
        dotted = f"{prefix}{label}"
        if (
            isinstance(a, BaseModel)
            and isinstance(b, BaseModel)
            and type(a) is type(b)
            and type(a) is not Delay
        ):
            found += _nested_fields(a, b, f"{dotted} " if not prefix else f"{dotted}.")
        else:
            found.append((dotted, a, b))
    return found


def _json(value: Any) -> Any:
    if isinstance(value, Delay):
        return int(value.total.total_seconds())
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, timedelta):
        return _seconds(value)
    return value


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def _show(value: Any) -> str:
    """A value as the marketer wrote it: '7 days', 'email', '[referral_sent]', 'none'."""
    if value is None:
        return "none"
    if isinstance(value, Delay):
        return span(value.total)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return f"[{', '.join(_show(v) for v in value)}]" if value else "none"
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if set(data) == {"start", "end"}:  # SMS hours
            return f"{data['start']}–{data['end']}"
        return compact(data)
    if isinstance(value, dict):
        return compact(value)
    if isinstance(value, str):
        return (
            value if value and not any(c.isspace() for c in value) else json.dumps(value, ensure_ascii=False)
        )
    return str(value)
