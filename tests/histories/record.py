"""Record the histories replayed by tests/test_replay.py.

    uv run python -m tests.histories.record

Run it (and commit the JSON) when a new journey shape deserves a guard; never
re-record an existing file to make a replay test pass: that is the change the
test is there to catch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHistory

from relance.core.migrate import upgrade
from relance.simulation.run import time_skipping, time_skipping_environment
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
    save(history, "journey_post_purchase_referred.json")


async def record_deferral() -> None:
    """An SMS outside the contact's hours: deferred by a timer, then sent (workflow.patched path)."""
    async with time_skipping_environment() as env:
        t0 = await env.get_current_time()
        paris = ZoneInfo("Europe/Paris")
        start = (t0.astimezone(paris) + timedelta(hours=2)).replace(minute=0)
        if start.hour >= 22:  # keep the window within one day
            start = start.replace(hour=8)
        window = f"{{start: '{start:%H}:00', end: '{start.hour + 1:02d}:00'}}"
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "scenarios").mkdir()
            (root / "scenarios" / "club.yaml").write_text(
                "scenario: club\njourneys:\n  - id: booking\n    trigger: {event: booking}\n"
                "    messages:\n      - id: confirmation\n        channel: sms\n"
                f"        template: club/confirmation\n        purpose: transactional\n        sms_hours: {window}\n"
            )
            (root / "templates" / "club").mkdir(parents=True)
            (root / "templates" / "club" / "confirmation.sms.j2").write_text("Booked")
            url = f"sqlite:///{root / 'r.db'}"
            upgrade(url)
            async with running_stack(
                env.client, url, scenarios_dir=root / "scenarios", templates_dir=root / "templates"
            ) as stack:
                accepted = await stack.relance.send_event(
                    {
                        "type": "booking",
                        "occurred_at": t0.isoformat(),
                        "contact": {
                            "external_id": "h-2",
                            "phone": "+33612345678",
                            "time_zone": "Europe/Paris",
                        },
                    }
                )
                handle = env.client.get_workflow_handle(accepted.journeys[0].workflow_id)
                async with time_skipping(env.client):
                    state = await handle.result()
                assert [o["status"] for o in state["steps_done"]] == ["deferred", "sent"], state
                save(await handle.fetch_history(), "journey_sms_deferred.json")


async def record_soft_bounce() -> None:
    """A message soft-bounced three times: two resends 12 and 24 hours after the first send."""
    from sqlalchemy import select

    from relance.models.journey import SoftBounce, SoftBounceInput
    from relance.models.tables.delivery import Delivery
    from relance.workflows.bounce import SoftBounceWorkflow

    async with time_skipping_environment() as env:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'r.db'}"
            upgrade(url)
            async with running_stack(env.client, url) as stack:
                t0 = await env.get_current_time()
                await stack.relance.send_event(
                    {
                        "type": "purchase",
                        "contact": {
                            "external_id": "h-3",
                            "email": "h3@example.com",
                            "consents": {"email": {"marketing": True}},
                        },
                        "occurred_at": t0.isoformat(),
                        "properties": {"order_id": "H-3"},
                    }
                )
                await env.sleep(timedelta(days=3, hours=1))
                async with stack.sessions() as session:
                    first = await session.scalar(select(Delivery).where(Delivery.message == "invite"))
                assert first is not None and first.status == "sent"
                workflow_id = f"soft-bounce:{first.idempotency_key}"
                handle = await env.client.start_workflow(
                    SoftBounceWorkflow.run,
                    SoftBounceInput(delivery_key=first.idempotency_key, first_sent_at=first.at),
                    id=workflow_id,
                    task_queue=stack.settings.task_queue,
                    start_signal="bounced",
                    start_signal_args=[SoftBounce(delivery_key=first.idempotency_key, at=first.at)],
                )
                for attempt in (2, 3):
                    await env.sleep(timedelta(hours=12, minutes=5))
                    key = f"{first.idempotency_key}#resend{attempt}"
                    await handle.signal(
                        "bounced", SoftBounce(delivery_key=key, at=await env.get_current_time())
                    )
                async with time_skipping(env.client):
                    assert await handle.result() == "soft-bounced 3 times within 24 hours: no more attempts"
                save(await handle.fetch_history(), "soft_bounce_three_attempts.json")


async def record_broadcast() -> None:
    """A bulk send rescheduled once during its safety delay, then sent to a small list."""
    from relance.broadcasts.service import Broadcasts
    from relance.models.broadcast import BroadcastIn
    from relance.workflows.broadcast import BroadcastWorkflow
    from tests.conftest import api_client

    async with time_skipping_environment() as env:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'r.db'}"
            upgrade(url)
            async with running_stack(env.client, url) as stack, api_client(stack) as http:
                people = ["h-4", "h-5", "h-6"]
                for who in people:
                    await http.post(
                        "/v1/contacts",
                        json={"external_id": who, "email": f"{who}@example.com",
                              "consents": {"email": {"marketing": who != "h-6"}}},
                    )  # fmt: skip
                await http.post("/v1/lists", json={"name": "H", "contacts": people})
                broadcasts = Broadcasts(stack.client, stack.sessions, stack.settings)
                state = await broadcasts.schedule(
                    BroadcastIn.model_validate(
                        {"name": "H", "audience": {"list": "H"}, "template": "referral/post_purchase_invite"}
                    )
                )
                await broadcasts.reschedule(state.broadcast_id, state.send_at + timedelta(minutes=5))
                handle = env.client.get_workflow_handle_for(
                    BroadcastWorkflow.run, f"broadcast:{state.broadcast_id}"
                )
                async with time_skipping(env.client):
                    done = await handle.result()
                assert done.report is not None and done.report.sent == 2, done
                save(await handle.fetch_history(), "broadcast_rescheduled_then_sent.json")


REFERRAL_PROGRAM = {
    "referral:h-inv-1": "referral_invited_converted_rewarded.json",
    "referral-thanks:bh-inv": "referral_thanks_after_invitations.json",
    "gift-card:reward-h-inv-1": "gift_card_unused_then_expired.json",
}
# The same story once program messages no longer take a journey step's shape (program-message-v1).
PROGRAM_MESSAGES = {
    "referral:h-inv-1": "referral_program_messages.json",
    "referral-thanks:bh-inv": "referral_thanks_program_messages.json",
    "gift-card:reward-h-inv-1": "gift_card_program_messages.json",
}


async def record_referral_program(names: dict[str, str] = REFERRAL_PROGRAM) -> None:
    """A sponsor invites one friend who buys and keeps it: the referral, its thank-you and the card."""
    async with time_skipping_environment() as env:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'r.db'}"
            upgrade(url)
            async with running_stack(env.client, url) as stack:
                t0 = await env.get_current_time()
                sponsor = {"external_id": "h-7", "email": "h7@example.com", "first_name": "Hugo"}
                await stack.relance.send_event(
                    {"type": "purchase", "contact": sponsor, "occurred_at": t0.isoformat(),
                     "properties": {"order_id": "H-7"}}
                )  # fmt: skip
                await stack.relance.send_event(
                    {"id": "h-inv", "type": "referral_sent", "contact": {"external_id": "h-7"},
                     "occurred_at": t0.isoformat(),
                     "properties": {"referees": [{"email": "h8@example.com", "first_name": "Iris"}]}}
                )  # fmt: skip
                await env.sleep(timedelta(days=2))
                await stack.relance.send_event(
                    {"type": "purchase", "contact": {"email": "h8@example.com"},
                     "occurred_at": (await env.get_current_time()).isoformat(),
                     "properties": {"order_id": "H-8", "referral_id": "h-inv-1"}}
                )  # fmt: skip
                for workflow_id, name in names.items():
                    handle = env.client.get_workflow_handle(workflow_id)
                    async with time_skipping(env.client):
                        await handle.result()
                    save(await handle.fetch_history(), name)


async def record_booking() -> None:
    """Booking reminders timed from the session's date: the evening before at 18:00, then on the hour."""
    from datetime import datetime, time

    from tests.conftest import EXAMPLES

    paris = ZoneInfo("Europe/Paris")
    async with time_skipping_environment() as env:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'r.db'}"
            upgrade(url)
            async with running_stack(env.client, url, scenarios_dir=EXAMPLES / "club" / "scenarios") as stack:
                t0 = await env.get_current_time()
                starts = datetime.combine(
                    t0.astimezone(paris).date() + timedelta(days=3), time(16, 30), paris
                )
                accepted = await stack.relance.send_event(
                    {"type": "booking", "occurred_at": t0.isoformat(),
                     "contact": {"external_id": "h-9", "email": "h9@example.com", "phone": "+33611223344",
                                 "time_zone": "Europe/Paris"},
                     "properties": {"booking_id": "H-9", "starts_at": starts.isoformat(), "activity": "yoga"}}
                )  # fmt: skip
                handle = env.client.get_workflow_handle(accepted.journeys[0].workflow_id)
                async with time_skipping(env.client):
                    state = await handle.result()
                assert [o["status"] for o in state["steps_done"]] == ["sent", "sent"], state
                save(await handle.fetch_history(), "journey_booking_reminders_dated.json")


def save(history: WorkflowHistory, name: str) -> None:
    target = HERE / name
    target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    which = sys.argv[1:] or [
        "referral",
        "deferral",
        "soft_bounce",
        "broadcast",
        "referral_program",
        "booking",
        "program_messages",
    ]
    if "referral" in which:
        asyncio.run(record())
    if "deferral" in which:
        asyncio.run(record_deferral())
    if "soft_bounce" in which:
        asyncio.run(record_soft_bounce())
    if "broadcast" in which:
        asyncio.run(record_broadcast())
    if "referral_program" in which:
        asyncio.run(record_referral_program())
    if "booking" in which:
        asyncio.run(record_booking())
    if "program_messages" in which:
        asyncio.run(record_referral_program(PROGRAM_MESSAGES))
