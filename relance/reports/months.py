"""Report periods as whole UTC months, written ``YYYY-MM``; no SQLAlchemy here (CLI start)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from relance.core.errors import Refused

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
DEFAULT_MONTHS = 12  # when --since is not given: a year up to --until
FIRST_YEAR, LAST_YEAR = 1900, 9998  # datetimes stop at year 9999, and a period ends a month later


class PeriodError(Refused):
    title = "the report period is not valid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC: from the first instant of ``since`` to the end of ``until``."""

    since: str
    until: str
    start: datetime
    end: datetime


def _index(month: str, field: str) -> int:
    if not re.fullmatch(MONTH_PATTERN, month):
        raise PeriodError(field, f"'{month}' is not a month: write it YYYY-MM, e.g. 2026-01")
    if not FIRST_YEAR <= int(month[:4]) <= LAST_YEAR:
        raise PeriodError(field, f"'{month}': reports cover the years {FIRST_YEAR} to {LAST_YEAR}")
    return int(month[:4]) * 12 + int(month[5:]) - 1


def _name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _first_instant(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def period(since: str | None, until: str | None, now: datetime | None = None) -> Period:
    """Both months included; ``until`` defaults to the current month, ``since`` to a year before it."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    last = _index(until, "until") if until else now.year * 12 + now.month - 1
    first = _index(since, "since") if since else last - DEFAULT_MONTHS + 1
    if first > last:
        raise PeriodError("since", f"{_name(first)} is after until ({_name(last)})")
    return Period(_name(first), _name(last), _first_instant(first), _first_instant(last + 1))


def months_between(since: str, until: str) -> list[str]:
    """Every month of the period, empty ones included (chart axes)."""
    return [_name(i) for i in range(_index(since, "since"), _index(until, "until") + 1)]


def shift(month: str, months: int) -> str:
    """``month`` moved by ``months`` (negative: earlier), e.g. ``shift("2026-01", -1) == "2025-12"``."""
    return _name(_index(month, "month") + months)


def last_complete_month(now: datetime | None = None) -> str:
    """The month before the current one (UTC): the last whose sends are all in the ledger."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return _name(now.year * 12 + now.month - 2)
