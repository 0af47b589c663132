"""Tables of dynamic segments and lead scoring (C-06, C-07, C-09)."""

from __future__ import annotations

from relance.models.tables import Base

__all__ = ["Base"]
