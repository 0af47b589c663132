"""Eligibility is checked at each send: opt-in, unsubscribe, 3-year rule, disabled messages (D-04, J-07, S-06)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.models.tables.contact import Consent
from tests.conftest import Stack, api_client, running_stack
from tests.helpers.events import event, opted_in
from tests.helpers.journeys import finish, ledger, start
from tests.helpers.timing import DAY

SCENARIO = """\
scenario: club
journeys:
  - id: welcome
    trigger: {event: signup}
    messages:
      - id: welcome
        template: club/welcome
        delay: 1 day
        purpose: marketing
      - id: receipt
        template: club/welcome
        delay: 1 day
        purpose: transactional
      - id: offer
        template: club/welcome
        delay: 2 days
        purpose: marketing
"""


@pytest.fixture
def club(tmp_path: Path) -> tuple[Path, Path]:
    scenarios, templates = tmp_path / "scenarios", tmp_path / "templates"
    scenarios.mkdir()
    (templates / "club").mkdir(parents=True)
    (templates / "club" / "welcome.subject.j2").write_text("Welcome {{ contact.first_name }}")
    (templates / "club" / "welcome.txt.j2").write_text("Hello {{ contact.first_name }}")
    (scenarios / "club.yaml").write_text(SCENARIO)
    return scenarios, templates


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    time_env: WorkflowEnvironment, sqlite_url: str, club: tuple[Path, Path]
) -> AsyncIterator[Stack]:
    scenarios, templates = club
    async with running_stack(time_env.client, sqlite_url, scenarios, templates_dir=templates) as stack:
        yield stack


async def signed_up(stack: Stack, at: datetime, contact: dict[str, Any]) -> str:
    """The welcome journey of a contact who signed up at ``at``."""
    return await start(stack, event("signup", at, contact))


async def outcomes(stack: Stack, workflow_id: str) -> list[tuple[str, str, str | None]]:
    """(message, status, reason) of every ledger row, once the journey is over."""
    await finish(stack, workflow_id)
    return [(message, status, reason) for message, status, _, reason in await ledger(stack)]


@pytest.mark.feature("D-04")
@pytest.mark.feature("J-07")
async def test_marketing_needs_an_opt_in_transactional_does_not(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await signed_up(
        stack, t0, {"external_id": "n-1", "email": "n1@example.com", "first_name": "Nils"}
    )
    assert await outcomes(stack, wf_id) == [
        ("welcome", "skipped", "no marketing opt-in for email"),
        ("receipt", "sent", None),
        ("offer", "skipped", "no marketing opt-in for email"),
    ]


@pytest.mark.feature("J-07")
@pytest.mark.feature("D-04")
async def test_consent_withdrawn_mid_journey_stops_the_next_marketing_message(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    async with api_client(stack) as api:
        t0 = await time_env.get_current_time()
        wf_id = await signed_up(stack, t0, opted_in("o-1"))
        await time_env.sleep(2 * DAY)  # welcome and receipt are out
        withdrawn = await api.post(
            "/v1/contacts", json={"external_id": "o-1", "consents": {"email": {"marketing": False}}}
        )
        assert withdrawn.status_code == 200 and withdrawn.json() == {"external_id": "o-1", "created": False}
        assert await outcomes(stack, wf_id) == [
            ("welcome", "sent", None),
            ("receipt", "sent", None),
            ("offer", "skipped", "no marketing opt-in for email"),
        ]
        async with stack.sessions() as session:
            consent = await session.scalar(select(Consent))
            assert consent is not None and (consent.granted, consent.source) == (False, "api")


@pytest.mark.feature("J-07")
async def test_unsubscribed_event_stops_marketing_in_every_journey(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await signed_up(stack, t0, opted_in("u-1"))
    await time_env.sleep(DAY + timedelta(hours=1))
    await stack.relance.send_event(event("unsubscribed", t0 + DAY, "u-1"))
    assert await outcomes(stack, wf_id) == [
        ("welcome", "sent", None),
        ("receipt", "sent", None),  # transactional: still due
        ("offer", "skipped", "contact unsubscribed from marketing"),
    ]


@pytest.mark.feature("J-07")
async def test_three_year_rule_stops_marketing_to_lapsed_customers(
    time_env: WorkflowEnvironment, stack: Stack
) -> None:
    t0 = await time_env.get_current_time()
    three_years_old_tomorrow = (t0 - 3 * 365 * DAY + DAY / 2).isoformat()
    wf_id = await signed_up(stack, t0, opted_in("l-1", last_purchase_at=three_years_old_tomorrow))
    assert await outcomes(stack, wf_id) == [
        ("welcome", "sent", None),  # still within three years (and a day, for the leap year)
        ("receipt", "sent", None),
        ("offer", "skipped", "last purchase over 3 years ago (3-year rule)"),
    ]


@pytest.mark.feature("S-06")
async def test_disabling_a_message_in_yaml_skips_it_in_running_journeys(
    time_env: WorkflowEnvironment, stack: Stack, club: tuple[Path, Path]
) -> None:
    t0 = await time_env.get_current_time()
    wf_id = await signed_up(stack, t0, opted_in("d-1"))
    await time_env.sleep(DAY + timedelta(hours=1))
    yaml_file = club[0] / "club.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("delay: 2 days\n", "delay: 2 days\n        enabled: false\n")
    )
    assert await outcomes(stack, wf_id) == [
        ("welcome", "sent", None),
        ("receipt", "sent", None),
        ("offer", "skipped", "message disabled in the scenario"),
    ]
