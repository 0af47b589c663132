"""Python client for backend services: send events, cancel and inspect journeys.

    from relance.starter import Relance

``Relance`` is loaded on first use (PEP 562), so importing this package does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relance.starter.facade import Relance

__all__ = ["Relance"]


def __getattr__(name: str) -> Any:
    if name == "Relance":
        from relance.starter.facade import Relance  # on first use: the facade loads SQLAlchemy and temporalio

        return Relance
    raise AttributeError(f"module 'relance.starter' has no attribute {name!r}")
