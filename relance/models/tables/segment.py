"""Tables and indexes of dynamic segments and lead scoring (C-06, C-07, C-09)."""

from __future__ import annotations

from sqlalchemy import Index

from relance.models.tables.base import Base
from relance.models.tables.event import Event

__all__ = ["Base", "ix_events_type_time"]

# Segment criteria count events of one type in a recent window for every contact at once
# ('visits >= 3 in 15 days'); scoring sums events of a few types. The existing index leads with
# contact_id, which only helps one contact at a time. contact_id is included so the count is
# an index-only scan on PostgreSQL.
ix_events_type_time = Index("ix_events_type_time_contact", Event.type, Event.occurred_at, Event.contact_id)
