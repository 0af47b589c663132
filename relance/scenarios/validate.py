"""Whole-directory validation: scenario files, and the templates their messages use."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from relance.contacts.consent import PURCHASE_EVENT
from relance.core.yaml_source import Loc, Problem, field_name
from relance.models.journey import Anchor, Channel, Purpose
from relance.scenarios.loader import ScenarioSet, collect_scenarios, scenario_files
from relance.scenarios.model import Journey, Message
from relance.templates.engine import TemplateError, TemplateProblem, TemplateStore, sample_context
from relance.templates.sms_length import SmsLength, sms_length


def validate_directory(scenarios_dir: Path, templates_dir: Path) -> list[Problem]:
    """Every problem of every scenario file and of the templates its messages use.

    Unlike ``load_scenarios`` this goes on after a broken file, so one run shows everything.
    """
    scenarios_dir, templates_dir = Path(scenarios_dir), Path(templates_dir)
    scenarios, problems = collect_scenarios(scenarios_dir)
    if scenarios_dir.is_dir() and not scenario_files(scenarios_dir):
        problems.append(
            Problem(str(scenarios_dir), 0, "directory", "no *.yaml or *.yml file here", "warning")
        )
    if len(scenarios) and not templates_dir.is_dir():
        problems.append(
            Problem(
                str(templates_dir),
                0,
                "templates",
                "not a directory: pass --templates or set RELANCE_TEMPLATES_DIR",
            )
        )
        return sorted(problems, key=lambda p: (p.file, p.line))
    problems += _message_problems(scenarios, TemplateStore(templates_dir))
    return sorted(problems, key=lambda p: (p.file, p.line))  # read file by file, top to bottom


def _message_problems(scenarios: ScenarioSet, store: TemplateStore) -> list[Problem]:
    checked: dict[tuple[str, str], list[TemplateProblem]] = {}  # a template shared by messages is read once
    problems: list[Problem] = []
    for scenario in scenarios:
        file = str(scenarios.files[scenario.scenario])
        for j, journey in enumerate(scenario.journeys):
            problems += _journey_warnings(scenarios, scenario.scenario, file, j, journey)
            for m, message in enumerate(journey.messages):
                key = (message.template, message.channel.value)
                if key not in checked:
                    checked[key] = store.check(*key)
                loc: Loc = ("journeys", j, "messages", m, "template")
                line = scenarios.line(scenario.scenario, loc)
                problems += [Problem(file, line, field_name(loc), str(p), p.severity) for p in checked[key]]
                for v, variant in enumerate(message.variants):  # an A/B version is sent like the message
                    vkey = (variant.template, message.channel.value)
                    if vkey not in checked:
                        checked[vkey] = store.check(*vkey)
                    vloc: Loc = ("journeys", j, "messages", m, "variants", v, "template")
                    vline = scenarios.line(scenario.scenario, vloc)
                    problems += [
                        Problem(file, vline, field_name(vloc), str(p), p.severity) for p in checked[vkey]
                    ]
                length = _sms_length(store, message, scenario.scenario, journey.id)
                if length is not None and length.segments > 1:
                    problems.append(
                        Problem(
                            file,
                            line,
                            field_name(loc),
                            f"with sample data this SMS takes {length}: each segment is billed",
                            "warning",
                        )
                    )
                if _lacks_unsubscribe_link(store, message):
                    problems.append(
                        Problem(
                            file,
                            line,
                            field_name(loc),
                            "a marketing email needs an unsubscribe link: add {{ links.unsubscribe }} "
                            f"to {message.template}.txt.j2 (and to its .html.j2)",
                        )
                    )
    return problems


def _sms_length(store: TemplateStore, message: Message, scenario: str, journey: str) -> SmsLength | None:
    if message.channel is not Channel.SMS or not store.path(message.template, "sms").is_file():
        return None
    try:
        rendered = store.render(message.template, "sms", sample_context(scenario, journey, message.id, "sms"))
    except TemplateError:
        return None  # reported by the template check
    return sms_length(rendered.text)


def _lacks_unsubscribe_link(store: TemplateStore, message: Message) -> bool:
    if message.channel is not Channel.EMAIL or message.purpose is not Purpose.MARKETING:
        return False
    variants = [message.template, *(f"{message.template}.{tag}" for tag in store.locales(message.template))]
    parts = [(v, s) for v in variants for s in ("txt", "html") if store.path(v, s).is_file()]
    if not parts:
        return False  # the missing file is reported already
    return not all(store.references(v, s, "links", "unsubscribe") for v, s in parts)


# Seed 001's advice: a reminder waits at least a week, a post-purchase message 1 to 90 days.
MIN_REMINDER_GAP = timedelta(days=7)
POST_PURCHASE_WINDOW = (timedelta(days=1), timedelta(days=90))
REFEREE_TRIGGERS = frozenset({"referee_registered"})  # journeys addressed to invited friends


def _journey_warnings(
    scenarios: ScenarioSet, scenario_id: str, file: str, index: int, journey: Journey
) -> list[Problem]:
    """Bad practice (S-04): the scenario runs, but a marketer would want to know."""
    if not any(message.enabled for message in journey.messages):
        loc: Loc = ("journeys", index, "messages")
        return [
            Problem(
                file, scenarios.line(scenario_id, loc), field_name(loc),
                "every message has 'enabled: false': the journey sends nothing; "
                "enable one or remove the journey",
                "warning",
            )
        ]  # fmt: skip
    problems: list[Problem] = []

    def warn(m: int, key: str, text: str) -> None:
        loc: Loc = ("journeys", index, "messages", m, key)
        problems.append(Problem(file, scenarios.line(scenario_id, loc), field_name(loc), text, "warning"))

    offsets: list[timedelta] = []  # each message's time after the trigger
    for m, message in enumerate(journey.messages):
        after_trigger = message.after is Anchor.TRIGGER or not offsets
        offsets.append(message.delay.total if after_trigger else offsets[-1] + message.delay.total)
        if m == 0:
            low, high = POST_PURCHASE_WINDOW
            marketing = message.purpose is Purpose.MARKETING  # a receipt may go at once
            if marketing and journey.trigger.event == PURCHASE_EVENT and not low <= offsets[0] <= high:
                warn(m, "delay", f"a post-purchase message sent {_span(offsets[0])} after the purchase: "
                     "1 to 90 days is advised (after delivery, while the purchase is fresh)")  # fmt: skip
            continue
        gap = offsets[m] - offsets[m - 1]
        # 0: sent together (e.g. email and SMS at once), not a reminder.
        if message.purpose is Purpose.MARKETING and timedelta(0) < gap < MIN_REMINDER_GAP:
            previous = journey.messages[m - 1].id
            warn(m, "delay", f"'{message.id}' comes {_span(gap)} after '{previous}': leave at least "
                 "7 days before a reminder, or it reads as pressure")  # fmt: skip
        if journey.trigger.event in REFEREE_TRIGGERS and message.purpose is not Purpose.MARKETING:
            warn(m, "purpose", f"'{message.id}' reminds a referee: that is marketing, and needs their "
                 "opt-in (GDPR); set 'purpose: marketing'")  # fmt: skip
    return problems


def _span(delta: timedelta) -> str:
    """'3 days', '12 hours', '90 seconds': the largest unit that divides it."""
    for unit, name in (
        (timedelta(days=1), "day"),
        (timedelta(hours=1), "hour"),
        (timedelta(minutes=1), "minute"),
    ):
        if delta % unit == timedelta(0):
            count = delta // unit
            return f"{count} {name}{'s' if count != 1 else ''}"
    seconds = int(delta.total_seconds())
    return f"{seconds} second{'s' if seconds != 1 else ''}"
