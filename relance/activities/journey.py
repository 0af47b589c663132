"""The bookkeeping activity of a journey's end: its status row for operators and reports."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from relance.models.journey import JourneyEnd
from relance.models.tables.journey import JourneyRun


@dataclass
class JourneyActivities:
    sessions: async_sessionmaker[AsyncSession]

    @activity.defn(name="end_journey")
    async def end_journey(self, end: JourneyEnd) -> None:
        async with self.sessions.begin() as session:  # committed on the way out
            await session.execute(
                update(JourneyRun)
                .where(JourneyRun.workflow_id == end.workflow_id)
                .values(status=end.status, end_reason=end.reason, ended_at=end.at)
            )
