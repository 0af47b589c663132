"""The map of every scenario: timings, channels, branches, and what looks inconsistent or duplicated."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from itertools import combinations
from typing import Any, Literal

from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from relance.core.yaml_source import Loc
from relance.models.journey import Channel
from relance.scenarios.loader import ScenarioSet
from relance.scenarios.model import Journey, Message, Scenario
from relance.scenarios.timing import (
    DAY,
    Timing,
    compact,
    span,
    timings,
    trigger_details,
    trigger_key,
    trigger_label,
)
from relance.templates.engine import TemplateStore, parts_for

FlagKind = Literal["no_message", "disabled", "template", "same_day", "duplicate"]
_ORDER: tuple[FlagKind, ...] = ("no_message", "disabled", "template", "same_day", "duplicate")
# Where a flag points: (scenario, journey, message or None for the whole journey).
Place = tuple[str, str, str | None]


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    where: str  # file:line of the first place
    text: str
    places: tuple[Place, ...]

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass(frozen=True)
class _Sent:
    scenario: Scenario
    journey: Journey
    index: int
    message: Message
    at: Timing

    @property
    def place(self) -> Place:
        return (self.scenario.scenario, self.journey.id, self.message.id)

    @property
    def name(self) -> str:
        return f"{self.scenario.scenario}/{self.journey.id}/{self.message.id}"


# -- flags -----------------------------------------------------------------------------------------


def find_flags(scenarios: ScenarioSet, templates: TemplateStore | None = None) -> list[Flag]:
    """Inconsistencies and duplicates a marketer should look at; none of them stops the engine.

    ``unless`` and ``exit_on`` events that no journey produces are not flagged: they usually come
    from outside (the shop, the CRM).
    """
    flags: list[Flag] = []
    by_event: dict[str, list[_Sent]] = defaultdict(list)
    for scenario in scenarios:
        for j, journey in enumerate(scenario.journeys):
            sent = [
                _Sent(scenario, journey, m, message, at)
                for m, (message, at) in enumerate(zip(journey.messages, timings(journey), strict=True))
            ]
            flags += _journey_flags(scenarios, scenario, j, journey, sent, templates)
            by_event[trigger_key(journey.trigger)] += [s for s in sent if s.message.enabled]
    for event, sent in sorted(by_event.items()):
        flags += _same_day(scenarios, event, sent)
        flags += _duplicates(scenarios, event, sent)
    return sorted(flags, key=lambda f: (_ORDER.index(f.kind), f.where))


def _where(scenarios: ScenarioSet, scenario: Scenario, loc: Loc) -> str:
    file = scenarios.files.get(scenario.scenario)
    line = scenarios.line(scenario.scenario, loc)
    return f"{file}:{line}" if file and line else str(file or scenario.scenario)


def _journey_flags(
    scenarios: ScenarioSet,
    scenario: Scenario,
    index: int,
    journey: Journey,
    sent: list[_Sent],
    templates: TemplateStore | None,
) -> list[Flag]:
    name = f"{scenario.scenario}/{journey.id}"
    if not any(s.message.enabled for s in sent):
        where = _where(scenarios, scenario, ("journeys", index, "messages" if sent else "id"))
        why = "every message is disabled" if sent else "it has no message"
        text = f"journey {name} sends nothing: {why}; add or enable a message, or remove the journey"
        return [Flag("no_message", where, text, ((scenario.scenario, journey.id, None),))]
    flags: list[Flag] = []
    for s in sent:
        loc: Loc = ("journeys", index, "messages", s.index)
        if not s.message.enabled:
            text = f"message {s.name} is never sent: it has 'enabled: false'"
            flags.append(Flag("disabled", _where(scenarios, scenario, (*loc, "enabled")), text, (s.place,)))
        elif templates is not None:
            missing = [
                templates.path(s.message.template, suffix).relative_to(templates.directory).as_posix()
                for suffix, required in parts_for(s.message.channel.value)
                if required and not templates.path(s.message.template, suffix).is_file()
            ]
            if missing:
                text = (
                    f"message {s.name} can never be sent: its {s.message.channel.value} template "
                    f"{s.message.template} lacks {', '.join(missing)}"
                )
                flags.append(
                    Flag("template", _where(scenarios, scenario, (*loc, "template")), text, (s.place,))
                )
    return flags


def _loc_of(s: _Sent) -> Loc:
    index = next(n for n, j in enumerate(s.scenario.journeys) if j.id == s.journey.id)
    return ("journeys", index, "messages", s.index)


def _same_day(scenarios: ScenarioSet, event: str, sent: list[_Sent]) -> list[Flag]:
    """Messages of two journeys started by the same event that land on the same day for one contact."""
    flags: list[Flag] = []
    for a, b in combinations(sent, 2):
        if (a.scenario.scenario, a.journey.id) == (b.scenario.scenario, b.journey.id):
            continue  # one journey sending email and SMS together is a choice, not a collision
        if (a.at.date, a.at.day) != (b.at.date, b.at.day):
            continue  # a date-timed message and a delay-timed one: their days cannot be compared
        when = _day_words(a.at)
        text = (
            f"same day: '{event}' starts {a.scenario.scenario}/{a.journey.id} and "
            f"{b.scenario.scenario}/{b.journey.id}; {a.name} ({a.at.label()}, "
            f"{a.message.channel.value}) and {b.name} ({b.at.label()}, {b.message.channel.value}) "
            f"reach the contact on {when}"
        )
        if _conditions(a.journey) != _conditions(b.journey):
            text += " (if the contact matches both triggers)"
        flags.append(Flag("same_day", _where(scenarios, a.scenario, _loc_of(a)), text, (a.place, b.place)))
    return flags


def _duplicates(scenarios: ScenarioSet, event: str, sent: list[_Sent]) -> list[Flag]:
    """The same template on the same channel in two journeys started by the same event."""
    groups: dict[tuple[str, Channel], list[_Sent]] = defaultdict(list)
    for s in sent:
        groups[(s.message.template, s.message.channel)].append(s)
    flags: list[Flag] = []
    for (template, channel), group in groups.items():
        journeys = {(s.scenario.scenario, s.journey.id) for s in group}
        if len(journeys) < 2:
            continue
        names = ", ".join(f"{s.name} ({s.at.label()})" for s in group)
        text = (
            f"duplicate: {channel.value} template {template} is sent by {len(journeys)} journeys "
            f"started by '{event}': {names}"
        )
        first = group[0]
        places = tuple(s.place for s in group)
        flags.append(Flag("duplicate", _where(scenarios, first.scenario, _loc_of(first)), text, places))
    return flags


def _day_words(at: Timing) -> str:
    if at.date is not None:
        return f"the same day ({span(abs(at.day) * DAY)} {'before' if at.day < 0 else 'after'} {at.date})"
    return "the day of the trigger" if at.day == 0 else f"day {at.day} after the trigger"


def _conditions(journey: Journey) -> dict[str, Any]:
    """What the trigger asks beyond what starts it (a segment, a threshold, reentry…)."""
    data = trigger_details(journey.trigger)
    data.pop("ref", None)  # identifies the trigger; it does not select contacts
    data.pop("date", None)
    return data


# -- terminal --------------------------------------------------------------------------------------


def render_tree(scenarios: ScenarioSet, flags: list[Flag]) -> Group:
    """scenario → journey → trigger → messages, each message at its time after the trigger."""
    flagged: dict[Place, list[FlagKind]] = defaultdict(list)
    for flag in flags:
        for place in flag.places:
            flagged[place].append(flag.kind)
    trees: list[Any] = []
    for scenario in scenarios:
        head = Text.assemble((scenario.scenario, "bold"))
        if scenario.name:
            head.append(f"  {scenario.name}")
        head.append(f"  ({scenarios.files.get(scenario.scenario)}, version {scenario.version})", "dim")
        tree = Tree(head)
        for journey in scenario.journeys:
            label = Text.assemble("journey ", (journey.id, "bold"))
            if journey.name:
                label.append(f"  {journey.name}")
            _marks(label, flagged.get((scenario.scenario, journey.id, None), []))
            branch = tree.add(label)
            trigger = Text.assemble("trigger ", (trigger_label(journey.trigger), "cyan"))
            extra = trigger_details(journey.trigger)
            if extra:
                trigger.append(f"  ({', '.join(f'{k}: {compact(v)}' for k, v in extra.items())})")
            messages = branch.add(trigger)
            at = timings(journey)
            width = (
                max((len(t.label()) for t in at), default=0),
                max((len(m.id) for m in journey.messages), default=0),
            )
            for message, when in zip(journey.messages, at, strict=True):
                messages.add(_message_line(scenario, journey, message, when, width, flagged))
            if journey.exit_on:
                branch.add(Text.assemble("exits early on ", (", ".join(journey.exit_on), "yellow")))
        trees.append(tree)
    if flags:
        trees.append(Text(f"\n{len(flags)} flag{'s' if len(flags) != 1 else ''}:", "bold red"))
        trees += [Text(f"  ⚠ {flag}") for flag in flags]
    else:
        trees.append(Text("\nno inconsistency or duplicate found", "green"))
    return Group(*trees)


def _message_line(
    scenario: Scenario,
    journey: Journey,
    message: Message,
    when: Timing,
    width: tuple[int, int],
    flagged: dict[Place, list[FlagKind]],
) -> Text:
    """'+10 days  reminder  email  referral/post_purchase_reminder  marketing, low  unless referral_sent'"""
    style = "" if message.enabled else "dim strike"
    line = Text.assemble((when.label().ljust(width[0]), "bold"), "  ", (message.id, style))
    line.append(" " * (width[1] - len(message.id)))
    line.append(
        f"  {message.channel.value:<5}  {message.template}  {message.purpose.value}, {message.priority.value}"
    )
    if message.unless:
        line.append("  unless ", "yellow")
        line.append(", ".join(message.unless))
    if not message.enabled:
        line.append("  disabled", "red")
    _marks(line, flagged.get((scenario.scenario, journey.id, message.id), []))
    return line


def _marks(line: Text, kinds: list[FlagKind]) -> None:
    for kind in dict.fromkeys(kinds):
        line.append(f"  ⚠ {kind.replace('_', ' ')}", "bold red")


# -- HTML ------------------------------------------------------------------------------------------

_LEFT, _RIGHT, _WIDTH = 250, 230, 1100  # label column, room for the last label, SVG width
_LANE, _TOP = 118, 34
_COLOURS = {"email": "#2563eb", "sms": "#059669"}
_STEPS = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    90 * DAY,
    365 * DAY,
]
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2937;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 2px} .meta{color:#6b7280;margin:0 0 8px}
.flags{border:1px solid #fca5a5;background:#fef2f2;border-radius:8px;padding:10px 16px 10px 32px}
.flags li{margin:4px 0} .flags code,.where{color:#6b7280;font-size:12px}
.ok{border:1px solid #86efac;background:#f0fdf4;border-radius:8px;padding:10px 16px}
.legend span{margin-right:16px} svg{display:block;max-width:100%;height:auto}
svg text{font:12px system-ui,sans-serif;fill:#1f2937} svg .small{font-size:11px;fill:#6b7280}
svg .jid{font-weight:600;font-size:13px} svg .axis line{stroke:#e5e7eb} svg .axis text{fill:#9ca3af}
svg .lane-line{stroke:#9ca3af;stroke-width:2} svg .branch path{fill:none;stroke:#d97706;stroke-dasharray:4 3}
svg .branch text{fill:#b45309;font-size:11px} svg .exit path{stroke:#dc2626} svg .exit text{fill:#b91c1c}
svg .ring{fill:none;stroke:#dc2626;stroke-width:2.5} svg .warn{fill:#dc2626;font-weight:700}
svg .trigger{fill:#111827} svg .date-mark{stroke:#111827;stroke-width:2}
svg .off{fill:#fff;stroke:#9ca3af;stroke-width:2}
"""


def render_html(scenarios: ScenarioSet, flags: list[Flag], title: str = "Scenario map") -> str:
    """A page that opens from disk: inline CSS and SVG, no script, no link to fetch."""
    flagged: dict[Place, list[Flag]] = defaultdict(list)
    for flag in flags:
        for place in flag.places:
            flagged[place].append(flag)
    # One scale for the whole page, so lanes compare at a glance; date-timed messages may come before 0.
    deltas = [t.delta for s in scenarios for j in s.journeys for t in timings(j)]
    low = min([timedelta(0), *deltas])
    horizon = (low, max([low + DAY, *deltas]))
    body = [f"<h1>{escape(title)}</h1>"]
    count = sum(len(s.journeys) for s in scenarios)
    body.append(
        f'<p class="meta">{len(scenarios)} scenario{"s" if len(scenarios) != 1 else ""}, '
        f"{count} journey{'s' if count != 1 else ''}; times are counted from each journey's trigger.</p>"
    )
    if flags:
        items = "".join(
            f'<li class="flag flag-{flag.kind}">{escape(flag.text)} '
            f'<span class="where">{escape(flag.where)}</span></li>'
            for flag in flags
        )
        heading = f"{len(flags)} flag{'s' if len(flags) != 1 else ''}"
        body.append(f'<h2 id="flags">{heading}</h2><ul class="flags">{items}</ul>')
    else:
        body.append('<p class="ok" id="flags">No inconsistency or duplicate found.</p>')
    body.append(
        '<p class="legend"><span style="color:#2563eb">● email</span><span style="color:#059669">● sms</span>'
        '<span style="color:#6b7280">○ disabled</span><span style="color:#dc2626">◯ flagged</span>'
        '<span style="color:#b45309">⤷ condition</span></p>'
    )
    for scenario in scenarios:
        body.append(
            f'<section class="scenario" data-scenario="{escape(scenario.scenario)}">'
            f"<h2>{escape(scenario.scenario)}{' — ' + escape(scenario.name) if scenario.name else ''}</h2>"
            f'<p class="meta">{escape(str(scenarios.files.get(scenario.scenario, "")))} · version '
            f"{scenario.version}{' · ' + escape(scenario.description) if scenario.description else ''}</p>"
            f"{_svg(scenario, horizon, flagged)}</section>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _axis_label(t: timedelta) -> str:
    return f"−{span(-t)}" if t < timedelta(0) else f"+{span(t)}"


def _svg(scenario: Scenario, horizon: tuple[timedelta, timedelta], flagged: dict[Place, list[Flag]]) -> str:
    low, high = horizon
    height = _TOP + _LANE * len(scenario.journeys) + 8
    scale = (_WIDTH - _LEFT - _RIGHT) / (high - low).total_seconds()

    def x(at: timedelta) -> float:
        return round(_LEFT + (at - low).total_seconds() * scale, 1)

    step = next((s for s in _STEPS if (high - low) / s <= 12), _STEPS[-1])
    ticks = [step * n for n in range(-int(-low / step), int(high / step) + 1)]
    axis = "".join(
        f'<line x1="{x(t)}" y1="{_TOP - 12}" x2="{x(t)}" y2="{height - 8}"/>'
        f'<text x="{x(t)}" y="{_TOP - 18}" text-anchor="middle">{escape(_axis_label(t))}</text>'
        for t in ticks
    )
    lanes = [
        _lane(scenario, journey, _TOP + 30 + n * _LANE, x, flagged)
        for n, journey in enumerate(scenario.journeys)
    ]
    label = escape(f"Timeline of scenario {scenario.scenario}")
    return (
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" '
        f'role="img" aria-label="{label}"><g class="axis">{axis}</g>{"".join(lanes)}</svg>'
    )


def _lane(scenario: Scenario, journey: Journey, y: float, x: Any, flagged: dict[Place, list[Flag]]) -> str:
    at = timings(journey)
    deltas = [t.delta for t in at]
    start, end = x(timedelta(0)), x(max([timedelta(0), *deltas]))
    first = min(start, x(min([timedelta(0), *deltas])))
    trigger = escape(trigger_label(journey.trigger))
    date = next((t.date for t in at if t.date), None)
    whole = flagged.get((scenario.scenario, journey.id, None), [])
    parts = [
        f'<text class="jid" x="8" y="{y - 4}">{escape(journey.id)}</text>',
        f'<text class="small" x="8" y="{y + 12}">{escape(journey.name[:34])}</text>',
        f'<text class="small trigger-label" x="8" y="{y + 28}">◆ on {trigger}</text>',
        # The trigger sits just before the lane, so a message sent at once does not hide it.
        f'<line class="lane-line" x1="{first - 18}" y1="{y}" x2="{max(end, start)}" y2="{y}"/>',
        f'<path class="trigger" d="M{first - 25} {y} l7 -7 l7 7 l-7 7 z">'
        f"<title>trigger: {trigger}</title></path>",
    ]
    if date:
        # Date-timed messages are placed around the date (0 on the axis), wherever it falls after the trigger.
        parts.append(
            f'<line class="date-mark" x1="{start}" y1="{y - 12}" x2="{start}" y2="{y + 12}"/>'
            f'<text class="small" x="{start + 4}" y="{y + 46}">0 = {escape(date)}</text>'
        )
    if whole:
        parts.append(
            f'<text class="warn" x="8" y="{y + 46}">⚠ {escape(whole[0].kind.replace("_", " "))}'
            f"<title>{escape(whole[0].text)}</title></text>"
        )
    if journey.exit_on:
        # Exit goals can happen at any time: a dashed exit running under the whole lane.
        parts.append(
            f'<g class="branch exit"><path d="M{first - 18} {y} C{first + 2} {y + 38},'
            f' {first + 12} {y + 38}, {first + 32} {y + 38} L{end + 60} {y + 38}"/>'
            f'<text x="{end + 66}" y="{y + 42}">exit on {escape(", ".join(journey.exit_on))}</text></g>'
        )
    previous_x, row = -1000.0, 0
    for message, when in zip(journey.messages, at, strict=True):
        cx = x(when.delta)
        row = row + 1 if cx - previous_x < 90 else 0  # close dots: stagger the labels
        previous_x = cx
        colour = _COLOURS.get(message.channel.value, "#6b7280")
        dot_class = "dot" if message.enabled else "dot off"
        fill = f' fill="{colour}"' if message.enabled else ""
        detail = (
            f"{message.id}: {when.label()} · {message.channel.value} · {message.template} · "
            f"{message.purpose.value}, {message.priority.value}"
            + (f" · unless {', '.join(message.unless)}" if message.unless else "")
            + ("" if message.enabled else " · disabled")
        )
        notes = flagged.get((scenario.scenario, journey.id, message.id), [])
        parts.append(
            f'<g class="message{" flagged" if notes else ""}" data-message="{escape(message.id)}" '
            f'data-offset="{int(when.delta.total_seconds())}" data-channel="{message.channel.value}">'
            f'<circle class="{dot_class}" cx="{cx}" cy="{y}" r="7"{fill}>'
            f"<title>{escape(detail)}</title></circle>"
            f'<text x="{cx}" y="{y - 14 - 14 * (row % 2)}" text-anchor="middle">{escape(message.id)}</text>'
            f'<text class="small" x="{cx}" y="{y + 22 + 12 * (row % 2)}" text-anchor="middle">'
            f"{escape(when.label())} · {message.channel.value}</text>"
        )
        if notes:
            text = " / ".join(dict.fromkeys(n.text for n in notes))
            parts.append(
                f'<circle class="ring" cx="{cx}" cy="{y}" r="12"/>'
                f'<text class="warn" x="{cx + 12}" y="{y - 8}">⚠<title>{escape(text)}</title></text>'
            )
        parts.append("</g>")
        if message.unless:
            # Towards the end of the axis the branch turns left, so its label stays on the page.
            side, anchor = (-1, "end") if cx > _LEFT + (_WIDTH - _LEFT - _RIGHT) * 0.7 else (1, "start")
            parts.append(
                f'<g class="branch unless">'
                f'<path d="M{cx} {y + 7} C{cx} {y + 52}, {cx + 10 * side} {y + 56},'
                f' {cx + 24 * side} {y + 56}"/>'
                f'<text x="{cx + 28 * side}" y="{y + 60}" text-anchor="{anchor}">skip if '
                f"{escape(', '.join(message.unless))}</text></g>"
            )
    name = escape(f"{scenario.scenario}/{journey.id}")
    return f'<g class="lane" data-journey="{name}">{"".join(parts)}</g>'
