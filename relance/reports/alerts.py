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

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from relance.reports.messages import MessageMonth
from relance.scenarios.loader import Problem, ScenarioError, field_name, parse_yaml


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
    reason: str


def load_rules(path: Path) -> list[Rule]:
    """The rules of a YAML file, or ScenarioError naming file, line and field of each problem."""
    data, source = parse_yaml(path)
    if not isinstance(data, list):
        raise ScenarioError(
            [Problem(str(path), 1, "file", "write a list of rules, each '- {kpi: ..., below: ...}'")]
        )
    rules, problems = [], []
    for index, item in enumerate(data):
        try:
            rules.append(Rule.model_validate(item))
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


def evaluate(rules: list[Rule], rows: list[MessageMonth], month: str) -> list[Alert]:
    """The alerts of ``month``; ``rows`` holds that month and the months before it."""
    history: dict[tuple[str, str, str, str], dict[str, MessageMonth]] = {}
    for row in rows:
        history.setdefault((row.scenario, row.journey, row.message, row.channel), {})[row.month] = row
    alerts: list[Alert] = []
    for rule in rules:
        for _, months in sorted(history.items()):
            row = months.get(month)
            if row is None or not rule.covers(row) or row.sent < rule.min_sent:
                continue
            value = getattr(row, rule.kpi)
            if value is None:
                continue
            alert = _check(rule, row, float(value), months, month)
            if alert is not None:
                alerts.append(alert)
    return alerts


def _check(
    rule: Rule, row: MessageMonth, value: float, months: dict[str, MessageMonth], month: str
) -> Alert | None:
    def alert(limit: float, reason: str) -> Alert:
        return Alert(
            scenario=row.scenario, journey=row.journey, message=row.message, channel=row.channel,
            month=month, kpi=rule.kpi, value=value, limit=limit, reason=reason,
        )  # fmt: skip

    if rule.below is not None and value < rule.below:
        return alert(rule.below, f"{rule.kpi} {value:.4g} is below {rule.below:g}")
    if rule.above is not None and value > rule.above:
        return alert(rule.above, f"{rule.kpi} {value:.4g} is above {rule.above:g}")
    if rule.below_trailing is not None:
        before = [months[m] for m in _previous(month, rule.months) if m in months]
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
            )
    return None


def _previous(month: str, count: int) -> list[str]:
    year, number = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(count):
        year, number = (year - 1, 12) if number == 1 else (year, number - 1)
        out.append(f"{year:04d}-{number:02d}")
    return out
