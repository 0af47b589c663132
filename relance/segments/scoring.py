"""Lead scoring (C-09): points per interaction, one score per contact from one SQL aggregate.

Interactions are events whose type has points (``form``, ``page_visit``, ``click`` sent by the
website through ``POST /v1/events``) and clicks on links of messages sent by relance
(``delivery_events`` of kind ``click``, joined to the delivery's contact), which earn the
points of ``click``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Integer, Subquery, case, false, func, literal, select, union_all
from sqlalchemy.sql import Select

from relance.models.tables.contact import Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.models.tables.event import Event

__all__ = ["DEFAULT_POINTS", "POINTS_ENV", "default_points", "scores"]

DEFAULT_POINTS: dict[str, int] = {"form": 10, "click": 3, "page_visit": 1}
POINTS_ENV = "RELANCE_LEAD_POINTS"
CLICK = "click"


def default_points() -> dict[str, int]:
    """``RELANCE_LEAD_POINTS`` (``form=10,click=3,page_visit=1``) or the defaults."""
    raw = os.environ.get(POINTS_ENV, "").strip()
    if not raw:
        return dict(DEFAULT_POINTS)
    points: dict[str, int] = {}
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            points[name.strip()] = int(value)
        except ValueError:
            raise ValueError(
                f"{POINTS_ENV}: '{part.strip()}' is not 'interaction=points', e.g. form=10,click=3"
            ) from None
    return points


# (contact_id, points); Any: Delivery.contact_id is nullable (its NULLs are filtered out in SQL)
# while Event.contact_id is not, and Select's column types are invariant
_Interactions = Select[Any, int]


def _interactions(points: Mapping[str, int]) -> list[_Interactions]:
    parts: list[_Interactions] = []
    if points:
        worth = case(*((Event.type == kind, literal(value, Integer)) for kind, value in points.items()))
        parts.append(
            select(Event.contact_id.label("contact_id"), worth.label("points")).where(
                Event.type.in_(list(points))
            )
        )
    if points.get(CLICK):
        parts.append(
            select(Delivery.contact_id, literal(points[CLICK], Integer))
            .join(DeliveryEvent, DeliveryEvent.delivery_key == Delivery.idempotency_key)
            .where(DeliveryEvent.kind == CLICK, Delivery.contact_id.is_not(None))
        )
    if not parts:
        nothing = select(Contact.id.label("contact_id"), literal(0, Integer).label("points"))
        parts.append(nothing.where(false()))
    return parts


def scores(points: Mapping[str, int] | None = None) -> Subquery:
    """``(contact_id, score)`` for every contact with at least one scored interaction."""
    parts = _interactions(default_points() if points is None else points)
    every = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("interactions")
    total = func.sum(every.c.points)
    return (
        select(every.c.contact_id.label("contact_id"), total.label("score"))
        .group_by(every.c.contact_id)
        .subquery("scores")
    )
