"""Time in tests: the day unit and a tolerance for times the servers set."""

from __future__ import annotations

from datetime import datetime, timedelta

DAY = timedelta(days=1)


def close_to(actual: datetime, expected: datetime, tolerance: timedelta = timedelta(seconds=5)) -> bool:
    """Within ``tolerance``: workers take a moment to pick up a timer that fired."""
    return abs(actual - expected) < tolerance
