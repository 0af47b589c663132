"""Reports on what the journeys sent and what it brought (A-01, A-05).

``message_report`` gives, per message and month, sends, deliveries, open / click /
unsubscribe rates and the revenue attributed last-touch. Definitions: docs/reports.md.

The names below are imported on first use: the CLI loads this package to parse its options,
and SQLAlchemy need not come with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relance.reports.messages import DEFAULT_WINDOW, MessageMonth, message_report

__all__ = ["DEFAULT_WINDOW", "MessageMonth", "message_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from relance.reports import messages

        return getattr(messages, name)
    raise AttributeError(f"module 'relance.reports' has no attribute {name!r}")
