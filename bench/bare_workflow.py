"""The baseline of bench/journeys.py: a bare workflow with a journey's timers and activities.

Its own module, importing only temporalio, so the workflow sandbox loads it cheaply.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

TIMEOUT = timedelta(seconds=30)


@activity.defn
async def noop(_: str) -> str:
    return "ok"


@workflow.defn
class BareJourney:
    @workflow.run
    async def run(self, name: str) -> None:
        for _ in range(2):  # invite and reminder: a timer, then a send
            await workflow.sleep(1)
            await workflow.execute_activity(noop, name, start_to_close_timeout=TIMEOUT)
        await workflow.execute_activity(noop, name, start_to_close_timeout=TIMEOUT)  # end of journey
