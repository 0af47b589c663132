"""Record the histories replayed by tests/test_replay.py.

    uv run python -m tests.histories.record

Run it (and commit the JSON) when a new journey shape deserves a guard; never
re-record an existing file to make a replay test pass: that is the change the
test is there to catch.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import timedelta
from pathlib import Path

from relance.migrate import upgrade
from relance.simulate import time_skipping, time_skipping_environment
from tests.conftest import running_stack

HERE = Path(__file__).parent


async def record() -> None:
    async with time_skipping_environment() as env:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'r.db'}"
            upgrade(url)
            async with running_stack(env.client, url) as stack:
                t0 = await env.get_current_time()
                contact = {"external_id": "h-1", "email": "h1@example.com", "first_name": "Hana"}
                accepted = await stack.relance.send_event(
                    {
                        "type": "purchase",
                        "contact": contact,
                        "occurred_at": t0.isoformat(),
                        "properties": {"order_id": "H-1"},
                    }
                )
                await stack.relance.send_event(
                    {
                        "type": "purchase",
                        "contact": contact,
                        "occurred_at": t0.isoformat(),
                        "properties": {"order_id": "H-1"},
                    }
                )  # a duplicate trigger, as a signal in the history
                await env.sleep(timedelta(days=5))
                await stack.relance.send_event(
                    {
                        "type": "referral_sent",
                        "contact": contact,
                        "occurred_at": (t0 + timedelta(days=5)).isoformat(),
                    }
                )
                handle = env.client.get_workflow_handle(accepted.journeys[0].workflow_id)
                async with time_skipping(env.client):
                    await handle.result()
                history = await handle.fetch_history()
    target = HERE / "journey_post_purchase_referred.json"
    target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    asyncio.run(record())
