"""What every workflow shares: activity timeouts and retries, the events' clock, one way to wait.

Workflow-safe: the standard library and temporalio only. Changing a value here changes the
commands running workflows issue: put such a change behind ``workflow.patched``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

# One call to an outside provider (email, SMS, gift cards): retried quickly, then every 5 minutes.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
PROVIDER_TIMEOUT = timedelta(minutes=1)
# A few rows written or read in relance's own database.
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
# The same for a bulk send, whose statements span its whole audience.
BULK_BOOKKEEPING_TIMEOUT = timedelta(minutes=5)
BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
BATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=20)  # a chunk of sends takes seconds
# An empty promo-code pool waits for an operator to load more: no hurry, no end.
REWARD_RETRY = RetryPolicy(
    initial_interval=timedelta(minutes=1),
    backoff_coefficient=2,
    maximum_interval=timedelta(hours=1),
)

NO_OFFSET = timedelta(0)
# The floor of an always-armed timer whose deadline has passed (a zero timer cannot be started).
_SHORTEST_TIMER = 0.001


def batch_timeout(batch_size: int, rate_per_second: float) -> timedelta:
    """A paced batch takes ``batch_size / rate`` seconds: twice that, plus a minute of margin."""
    return timedelta(seconds=60 + 2 * batch_size / rate_per_second)


def events_now(offset: timedelta = NO_OFFSET) -> datetime:
    """The events' clock: the server's, less a simulation's offset (zero in production)."""
    return workflow.now() - offset


async def wait_until(
    deadline: datetime,
    *,
    unless: Callable[[], bool],
    offset: timedelta = NO_OFFSET,
    always_arm: bool = False,
) -> bool:
    """Wait until ``deadline`` (on the events' clock) unless ``unless()`` holds first.

    True as soon as ``unless()`` holds; False once the deadline passes. Without a timer when
    ``unless()`` already holds or the deadline has passed. ``always_arm`` starts the timer
    anyway (at least 1 ms): the commands of the workflows that were written that way, whose
    recorded histories count that timer.
    """
    remaining = deadline - events_now(offset)
    if always_arm:
        timeout = max(remaining.total_seconds(), _SHORTEST_TIMER)
    else:
        if unless() or remaining <= timedelta(0):
            return unless()
        timeout = remaining.total_seconds()
    try:
        await workflow.wait_condition(unless, timeout=timeout)
    except TimeoutError:
        return False
    return True
