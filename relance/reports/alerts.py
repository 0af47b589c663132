"""KPI alerts (A-02): a message's rate below a threshold, or below a share of its own
trailing average, in a month of sends.

Rules are YAML, one per list item::

    - {kpi: open_rate, below: 0.15, scenario: referral}
    - {kpi: click_rate, below_trailing: 0.7, months: 3}   # under 70 % of its last 3 months
    - {kpi: rpm, below: 5, min_sent: 500}

``kpi`` is a field of MessageMonth (open_rate, click_rate, unsubscribe_rate, rpm, sent,
delivered, revenue...). Rows with fewer than ``min_sent`` sends (default 100) are left
out: a rate over a handful of messages says nothing. An unsubscribe rate that goes up is
the alarm, so ``above`` works too.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from relance.core.yaml_source import Problem, SourceError, field_name, parse_yaml
from relance.reports.messages import DEFAULT_WINDOW, MessageMonth, message_report
from relance.reports.months import period, shift
from relance.scenarios.loader import ScenarioError

__all__ = ["Alert", "Rule", "check_month", "default_rules_path", "evaluate", "load_rules"]

RULES_ENV = "RELANCE_ALERT_RULES"
DEFAULT_RULES = Path("examples/reports/alerts.yaml")


def default_rules_path() -> Path:
    """``$RELANCE_ALERT_RULES``, else the example rules (relative to the working directory)."""
    return Path(os.environ.get(RULES_ENV) or DEFAULT_RULES)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kpi: Literal[
        "open_rate", "click_rate", "unsubscribe_rate", "rpm", "sent", "delivered", "revenue", "purchases"
    ]
    below: float | None = None
    above: float | None = None
    below_trailing: float | None = Field(None, gt=0, description="a share of the trailing average, e.g. 0.7")
    months: int = Field(3, ge=1, le=11, description="how many months before make the trailing average")
    min_sent: int = Field(100, ge=0)
    scenario: str | None = None
    journey: str | None = None
    message: str | None = None
    channel: str | None = None
    _line: int = PrivateAttr(0)  # where the rule is written, quoted in its alerts

    @model_validator(mode="after")
    def _one_test(self) -> Rule:
        if sum(x is not None for x in (self.below, self.above, self.below_trailing)) != 1:
            raise ValueError("give one of 'below', 'above' or 'below_trailing'")
        return self

    def covers(self, row: MessageMonth) -> bool:
        wanted = (self.scenario, self.journey, self.message, self.channel)
        have = (row.scenario, row.journey, row.message, row.channel)
        return all(w is None or w == h for w, h in zip(wanted, have, strict=True))


class Alert(BaseModel):
    scenario: str
    journey: str
    message: str
    channel: str
    month: str
    kpi: str
    value: float
    limit: float = Field(description="the threshold, or the share of the trailing average")
    threshold: float | None = Field(description="the rule's 'below' or 'above'; null for a trailing rule")
    trailing_average: float | None = Field(
        description="the KPI's average over the months before (trailing rules only)"
    )
    reason: str
    rule: str = Field(description="file:line of the rule that fired")


def load_rules(path: Path) -> list[Rule]:
    """The rules of a YAML file, or ScenarioError naming file, line and field of each problem."""
    try:
        data, source = parse_yaml(path, empty="write a list of rules")
    except SourceError as error:
        raise ScenarioError(error.problems) from None
    if not isinstance(data, list):
        raise ScenarioError(
            [Problem(str(path), 1, "file", "write a list of rules, each '- {kpi: ..., below: ...}'")]
        )
    rules: list[Rule] = []
    problems: list[Problem] = []
    for index, item in enumerate(data):
        try:
            rule = Rule.model_validate(item)
            rule._line = source.line((index,))
            rules.append(rule)
        except ValidationError as error:
            for err in error.errors():
                loc = (index, *err["loc"])
                problems.append(
                    Problem(
                        str(path), source.line(loc), field_name(loc), err["msg"].removeprefix("Value error, ")
                    )
                )
    if problems:
        raise ScenarioError(problems)
    return rules


def evaluate(rules: list[Rule], rows: list[MessageMonth], month: str, source: str = "rules") -> list[Alert]:
    """The alerts of ``month``; ``rows`` holds that month and the months before it.

    ``source`` names the rules file in each alert (``file:line`` of the rule).
    """
    history: dict[tuple[str, str, str, str], dict[str, MessageMonth]] = {}
    for row in rows:
        history.setdefault((row.scenario, row.journey, row.message, row.channel), {})[row.month] = row
    alerts: list[Alert] = []
    for rule in rules:
        for _, months in sorted(history.items()):
            current = months.get(month)
            if current is None or not rule.covers(current) or current.sent < rule.min_sent:
                continue
            value = getattr(current, rule.kpi)
            if value is None:
                continue
            alert = _check(rule, current, float(value), months, month, source)
            if alert is not None:
                alerts.append(alert)
    return alerts


def _check(
    rule: Rule, row: MessageMonth, value: float, months: dict[str, MessageMonth], month: str, source: str
) -> Alert | None:
    def alert(limit: float, reason: str, average: float | None = None) -> Alert:
        return Alert(
            scenario=row.scenario, journey=row.journey, message=row.message, channel=row.channel,
            month=month, kpi=rule.kpi, value=value, limit=limit,
            threshold=None if average is not None else limit, trailing_average=average,
            reason=reason, rule=f"{source}:{rule._line}",
        )  # fmt: skip

    if rule.below is not None and value < rule.below:
        return alert(rule.below, f"{rule.kpi} {value:.4g} is below {rule.below:g}")
    if rule.above is not None and value > rule.above:
        return alert(rule.above, f"{rule.kpi} {value:.4g} is above {rule.above:g}")
    if rule.below_trailing is not None:
        before = [months[m] for m in (shift(month, -n) for n in range(1, rule.months + 1)) if m in months]
        values = [
            float(v) for r in before if r.sent >= rule.min_sent and (v := getattr(r, rule.kpi)) is not None
        ]
        if not values:
            return None  # nothing to compare with yet
        average = sum(values) / len(values)
        limit = rule.below_trailing * average
        if value < limit:
            return alert(
                limit,
                f"{rule.kpi} {value:.4g} is below {rule.below_trailing:.0%} of its average over the "
                f"{len(values)} month(s) before ({average:.4g})",
                average,
            )
    return None


async def check_month(
    session: AsyncSession,
    rules: list[Rule],
    month: str,
    *,
    window: timedelta = DEFAULT_WINDOW,
    source: str = "rules",
) -> list[Alert]:
    """The alerts of the sends of ``month`` (YYYY-MM, UTC); reads the month and the trailing ones."""
    back = max((r.months for r in rules if r.below_trailing is not None), default=0)
    chosen = period(shift(month, -back), month)
    rows = await message_report(session, since=chosen.start, until=chosen.end, window=window)
    return evaluate(rules, rows, month, source)
