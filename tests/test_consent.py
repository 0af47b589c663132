"""Eligibility is checked at each send: opt-in, unsubscribe, 3-year rule, disabled messages (D-04, J-07, S-06)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.models.tables.contact import Consent
from relance.models.tables.delivery import Delivery
from relance.simulation.run import time_skipping
from tests.conftest import Stack, api_client, running_stack

DAY = timedelta(days=1)

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


def signup(at: object, contact: dict[str, object]) -> dict[str, object]:
    return {"type": "signup", "contact": contact, "occurred_at": at.isoformat()}  # type: ignore[attr-defined]


async def outcomes(stack: Stack, workflow_id: str) -> list[tuple[str, str, str | None]]:
    async with time_skipping(stack.client):
        await stack.client.get_workflow_handle(workflow_id).result()
    async with stack.sessions() as session:
        rows = await session.scalars(select(Delivery).order_by(Delivery.at, Delivery.id))
        return [(r.message, r.status, r.reason) for r in rows]


@pytest.mark.feature("D-04")
@pytest.mark.feature("J-07")
async def test_marketing_needs_an_opt_in_transactional_does_not(
    time_env: WorkflowEnvironment, sqlite_url: str, club: tuple[Path, Path]
) -> None:
    scenarios, templates = club
    async with running_stack(time_env.client, sqlite_url, scenarios, templates_dir=templates) as stack:
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(
            signup(t0, {"external_id": "n-1", "email": "n1@example.com", "first_name": "Nils"})
        )
        assert await outcomes(stack, accepted.journeys[0].workflow_id) == [
            ("welcome", "skipped", "no marketing opt-in for email"),
            ("receipt", "sent", None),
            ("offer", "skipped", "no marketing opt-in for email"),
        ]


@pytest.mark.feature("J-07")
@pytest.mark.feature("D-04")
async def test_consent_withdrawn_mid_journey_stops_the_next_marketing_message(
    time_env: WorkflowEnvironment, sqlite_url: str, club: tuple[Path, Path]
) -> None:
    scenarios, templates = club
    async with running_stack(time_env.client, sqlite_url, scenarios, templates_dir=templates) as stack:
        async with api_client(stack) as api:
            t0 = await time_env.get_current_time()
            contact = {
                "external_id": "o-1",
                "email": "o1@example.com",
                "consents": {"email": {"marketing": True}},
            }
            accepted = await stack.relance.send_event(signup(t0, contact))
            await time_env.sleep(2 * DAY)  # welcome and receipt are out
            withdrawn = await api.post(
                "/v1/contacts", json={"external_id": "o-1", "consents": {"email": {"marketing": False}}}
            )
            assert withdrawn.status_code == 200 and withdrawn.json() == {
                "external_id": "o-1",
                "created": False,
            }
            assert await outcomes(stack, accepted.journeys[0].workflow_id) == [
                ("welcome", "sent", None),
                ("receipt", "sent", None),
                ("offer", "skipped", "no marketing opt-in for email"),
            ]
            async with stack.sessions() as session:
                consent = await session.scalar(select(Consent))
                assert consent is not None and (consent.granted, consent.source) == (False, "api")


@pytest.mark.feature("J-07")
async def test_unsubscribed_event_stops_marketing_in_every_journey(
    time_env: WorkflowEnvironment, sqlite_url: str, club: tuple[Path, Path]
) -> None:
    scenarios, templates = club
    async with running_stack(time_env.client, sqlite_url, scenarios, templates_dir=templates) as stack:
        t0 = await time_env.get_current_time()
        contact = {
            "external_id": "u-1",
            "email": "u1@example.com",
            "consents": {"email": {"marketing": True}},
        }
        accepted = await stack.relance.send_event(signup(t0, contact))
        await time_env.sleep(DAY + timedelta(hours=1))
        await stack.relance.send_event(
            {"type": "unsubscribed", "contact": {"external_id": "u-1"}, "occurred_at": (t0 + DAY).isoformat()}
        )
        assert await outcomes(stack, accepted.journeys[0].workflow_id) == [
            ("welcome", "sent", None),
            ("receipt", "sent", None),  # transactional: still due
            ("offer", "skipped", "contact unsubscribed from marketing"),
        ]


@pytest.mark.feature("J-07")
async def test_three_year_rule_stops_marketing_to_lapsed_customers(
    time_env: WorkflowEnvironment, sqlite_url: str, club: tuple[Path, Path]
) -> None:
    scenarios, templates = club
    async with running_stack(time_env.client, sqlite_url, scenarios, templates_dir=templates) as stack:
        t0 = await time_env.get_current_time()
        contact = {
            "external_id": "l-1",
            "email": "l1@example.com",
            "consents": {"email": {"marketing": True}},
            "last_purchase_at": (t0 - 3 * 365 * DAY + DAY / 2).isoformat(),  # 3 years old tomorrow
        }
        accepted = await stack.relance.send_event(signup(t0, contact))
        assert await outcomes(stack, accepted.journeys[0].workflow_id) == [
            ("welcome", "sent", None),  # still within three years (and a day, for the leap year)
            ("receipt", "sent", None),
            ("offer", "skipped", "last purchase over 3 years ago (3-year rule)"),
        ]


@pytest.mark.feature("S-06")
async def test_disabling_a_message_in_yaml_skips_it_in_running_journeys(
    time_env: WorkflowEnvironment, sqlite_url: str, club: tuple[Path, Path]
) -> None:
    scenarios, templates = club
    async with running_stack(time_env.client, sqlite_url, scenarios, templates_dir=templates) as stack:
        t0 = await time_env.get_current_time()
        contact = {
            "external_id": "d-1",
            "email": "d1@example.com",
            "consents": {"email": {"marketing": True}},
        }
        accepted = await stack.relance.send_event(signup(t0, contact))
        await time_env.sleep(DAY + timedelta(hours=1))
        yaml_file = scenarios / "club.yaml"
        yaml_file.write_text(
            yaml_file.read_text().replace("delay: 2 days\n", "delay: 2 days\n        enabled: false\n")
        )
        assert await outcomes(stack, accepted.journeys[0].workflow_id) == [
            ("welcome", "sent", None),
            ("receipt", "sent", None),
            ("offer", "skipped", "message disabled in the scenario"),
        ]
