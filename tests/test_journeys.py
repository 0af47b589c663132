"""The post-purchase journey on the time-skipping server: timing, skips, signals, queries."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from relance.channels.memory import CaptureChannel
from relance.models.tables.delivery import Delivery
from relance.models.tables.journey import JourneyRun
from relance.workflows.ids import journey as workflow_id
from relance.workflows.ids import ref_of
from tests.conftest import EXAMPLES, Stack, purchase, running_stack
from tests.helpers.events import event
from tests.helpers.journeys import captured, finish, journey_run, ledger, start
from tests.helpers.timing import DAY, close_to


@pytest.mark.feature("R-01")
@pytest.mark.feature("R-03")
@pytest.mark.feature("J-02")
async def test_invite_after_three_days_then_reminder_seven_days_later(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    accepted = await stack.relance.send_event(purchase(t0, first_name="Zoé"))
    assert [j.status for j in accepted.journeys] == ["started"]
    wf_id = accepted.journeys[0].workflow_id
    state = await finish(stack, wf_id)

    rows = await ledger(stack)
    assert [(m, s) for m, s, _, _ in rows] == [("invite", "sent"), ("reminder", "sent")]
    assert close_to(rows[0][2], t0 + 3 * DAY)
    assert close_to(rows[1][2], rows[0][2] + 7 * DAY)
    assert state.status == "completed"
    sent = captured(stack)
    assert [m.to for m in sent] == ["c-1@example.com", "c-1@example.com"]
    assert sent[0].subject == "Zoé, share the love and get rewarded"
    assert "A-1" in sent[0].text
    assert (await journey_run(stack, wf_id)).status == "completed"


@pytest.mark.feature("R-03")
async def test_reminder_skipped_when_the_contact_referred_meanwhile(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await start(stack, purchase(t0, first_name="Zoé"))
    await time_env.sleep(5 * DAY)  # the invite went out on day 3
    notified = await stack.relance.send_event(event("referral_sent", t0 + 5 * DAY))
    assert notified.signalled == [wf_id]
    state = await finish(stack, wf_id)

    rows = await ledger(stack)
    assert [(m, s, r) for m, s, _, r in rows] == [
        ("invite", "sent", None),
        ("reminder", "skipped", "contact sent 'referral_sent' since the journey started"),
    ]
    assert close_to(rows[1][2], t0 + 10 * DAY)  # decided when the reminder was due
    assert [o.step for o in state.steps_done] == ["invite", "reminder"]


@pytest.mark.feature("J-03")
async def test_cancel_signal_skips_what_remains_with_the_reason(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await start(stack, purchase(t0, first_name="Zoé"))
    await time_env.sleep(4 * DAY)
    await stack.relance.cancel_journey(wf_id, "customer asked the shop by phone")
    state = await finish(stack, wf_id)

    assert state.status == "cancelled"
    assert state.end_reason == "cancelled: customer asked the shop by phone"
    rows = await ledger(stack)
    assert [(m, s, r) for m, s, _, r in rows] == [
        ("invite", "sent", None),
        ("reminder", "skipped", "cancelled: customer asked the shop by phone"),
    ]
    assert close_to(rows[1][2], t0 + 4 * DAY)
    run = await journey_run(stack, wf_id)
    assert (run.status, run.end_reason) == ("cancelled", "cancelled: customer asked the shop by phone")


@pytest.mark.feature("J-03")
async def test_exit_event_ends_the_journey_before_the_first_message(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await start(stack, purchase(t0, first_name="Zoé"))
    await time_env.sleep(DAY)
    await stack.relance.send_event(event("unsubscribed", t0 + DAY))
    state = await finish(stack, wf_id)

    assert state.status == "exited"
    rows = await ledger(stack)
    assert [(m, s, r) for m, s, _, r in rows] == [
        ("invite", "skipped", "exit event 'unsubscribed'"),
        ("reminder", "skipped", "exit event 'unsubscribed'"),
    ]
    assert captured(stack) == []


@pytest.mark.feature("J-01")
@pytest.mark.feature("J-08")
async def test_a_repeated_trigger_does_not_duplicate_the_journey(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    first = await stack.relance.send_event(purchase(t0, order="A-1", first_name="Zoé"))
    again = await stack.relance.send_event(purchase(t0, order="A-1", first_name="Zoé"))
    other = await stack.relance.send_event(purchase(t0, order="B-2"))
    wf_id = first.journeys[0].workflow_id
    assert wf_id == "journey:referral:post_purchase:c-1:A-1"
    assert again.journeys[0].workflow_id == wf_id
    assert again.journeys[0].status == "duplicate"
    assert other.journeys[0].status == "started"  # another order: a journey of its own

    state = await stack.relance.journey_state(wf_id)
    assert state.duplicate_triggers == 1
    await finish(stack, wf_id)
    await finish(stack, other.journeys[0].workflow_id)
    async with stack.sessions() as session:
        per_journey = dict(
            (
                await session.execute(
                    select(Delivery.workflow_id, func.count())
                    .where(Delivery.status != "deferred")  # one invite waits a day (daily cap)
                    .group_by(Delivery.workflow_id)
                )
            ).all()
        )
    assert per_journey == {wf_id: 2, other.journeys[0].workflow_id: 2}
    # After completion the same order still does not start it again.
    late = await stack.relance.send_event(purchase(t0, order="A-1", first_name="Zoé"))
    assert late.journeys[0].status == "duplicate"


@pytest.mark.feature("J-04")
async def test_query_reports_current_step_next_send_and_steps_done(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await start(stack, purchase(t0, first_name="Zoé"))

    state = await stack.relance.journey_state(wf_id)
    assert state.status == "running"
    assert state.current_step == "invite"
    assert state.next_send is not None and state.next_send.step == "invite"
    assert close_to(state.next_send.at, t0 + 3 * DAY)
    assert state.steps_done == []

    await time_env.sleep(4 * DAY)
    state = await stack.relance.journey_state(wf_id)
    assert state.current_step == "reminder"
    assert [(o.step, o.status.value) for o in state.steps_done] == [("invite", "sent")]
    assert state.next_send is not None
    assert close_to(state.next_send.at, state.steps_done[0].at + 7 * DAY)
    assert isinstance(stack.channel, CaptureChannel)


@pytest.mark.feature("J-06")
async def test_a_running_journey_keeps_its_scenario_version_when_the_file_changes(
    time_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "referral.yaml"
    scenario.write_text((EXAMPLES / "scenarios" / "referral.yaml").read_text())
    async with running_stack(time_env.client, sqlite_url, scenarios_dir=tmp_path) as stack:
        t0 = await time_env.get_current_time()
        before = await start(stack, purchase(t0, order="OLD"))
        old_version = stack.relance.ingestor.scenarios().get("referral").version  # type: ignore[union-attr]
        # The marketer shortens the reminder while the first journey runs.
        scenario.write_text(scenario.read_text().replace("delay: 7 days", "delay: 2 days"))
        # Another contact: the same one would meet the daily cap of marketing messages.
        after = await start(stack, purchase(t0, order="NEW", contact="c-2"))
        new_version = stack.relance.ingestor.scenarios().get("referral").version  # type: ignore[union-attr]
        assert new_version != old_version

        old = await finish(stack, before)
        new = await finish(stack, after)
        assert (old.version, new.version) == (old_version, new_version)
        gap = {s.version: s.steps_done[1].at - s.steps_done[0].at for s in (old, new)}
        assert abs(gap[old_version] - 7 * DAY) < timedelta(seconds=5)
        assert abs(gap[new_version] - 2 * DAY) < timedelta(seconds=5)
        async with stack.sessions() as session:
            versions = dict(
                (await session.execute(select(JourneyRun.workflow_id, JourneyRun.scenario_version))).all()
            )
        assert versions == {before: old_version, after: new_version}


@pytest.mark.feature("J-01")
def test_workflow_ids_are_unambiguous_whatever_the_contact_and_ref() -> None:
    one = workflow_id("referral", "post_purchase", "a:b", "c")
    other = workflow_id("referral", "post_purchase", "a", "b:c")
    assert one != other
    assert one == "journey:referral:post_purchase:a%3Ab:c"
    assert ref_of(other) == "b:c" and ref_of(workflow_id("s", "j", "x", "50%:off")) == "50%:off"


@pytest.mark.feature("D-02")
async def test_messages_follow_the_contact_locale_with_fallback(
    time_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(EXAMPLES / "templates", templates)
    for french in (templates / "referral").glob("post_purchase_reminder.fr.*"):
        french.unlink()  # a message not translated yet
    async with running_stack(time_env.client, sqlite_url, templates_dir=templates) as stack:
        t0 = await time_env.get_current_time()
        await finish(
            stack,
            await start(stack, purchase(t0, order="L-1", contact="l-1", first_name="Léa", locale="fr-CA")),
        )
    assert [m.subject for m in captured(stack)] == [
        "Léa, parrainez vos proches et soyez récompensé",  # referral/post_purchase_invite.fr.*
        "Léa, your friends are still waiting for their offer",  # no French reminder: the default
    ]
