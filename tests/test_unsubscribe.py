"""Signed unsubscribe links, RFC 8058 headers, and the pages behind them (D-03)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.core.tokens import Signer, TokenError
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.simulation.run import time_skipping
from tests.conftest import api_client, purchase, running_stack

SECRET = "a-test-secret-of-some-length"


@pytest.mark.feature("D-03")
async def test_marketing_email_carries_a_link_that_unsubscribes_and_stops_the_journey(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(
        time_env.client, sqlite_url, secret_key=SECRET, public_url="https://shop.example"
    ) as stack:
        async with api_client(stack) as web:
            t0 = await time_env.get_current_time()
            accepted = await stack.relance.send_event(purchase(t0, order="U-1", contact="u-1"))
            await time_env.sleep(timedelta(days=4))  # the invite is out, the reminder waits
            invite = stack.channel.messages[0]  # type: ignore[attr-defined]

            link = invite.headers["List-Unsubscribe"].strip("<>")
            assert link.startswith("https://shop.example/u/")
            assert invite.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert f"Unsubscribe: {link}" in invite.text
            assert f'href="{link}"' in (invite.html or "")
            path = link.removeprefix("https://shop.example")

            page = await web.get(path)
            assert page.status_code == 200 and '<form method="post"' in page.text
            assert "u***@e***.com" in page.text  # the address is never shown in full
            async with stack.sessions() as session:  # a GET (a mail scanner) changes nothing
                assert (await session.scalar(select(Contact))).unsubscribed_at is None  # type: ignore[union-attr]

            done = await web.post(
                path,
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert done.status_code == 200 and "You are unsubscribed" in done.text
            again = await web.post(path)  # pressed twice: still one unsubscribe for this message
            assert again.status_code == 200

            async with time_skipping(stack.client):
                await stack.client.get_workflow_handle(accepted.journeys[0].workflow_id).result()
            async with stack.sessions() as session:
                rows = list(await session.scalars(select(Delivery).order_by(Delivery.at)))
                consent = await session.scalar(select(Consent).where(Consent.channel == "email"))
            assert [(r.message, r.status, r.reason) for r in rows] == [
                ("invite", "sent", None),
                ("reminder", "skipped", "contact unsubscribed from marketing"),
            ]
            assert consent is not None and (consent.granted, consent.source) == (False, "link")
            async with stack.sessions() as session:  # counted against the message it came in
                events = [(e.delivery_key, e.kind) for e in await session.scalars(select(DeliveryEvent))]
            assert events == [(rows[0].idempotency_key, "unsubscribe")]


@pytest.mark.feature("D-03")
async def test_forged_tampered_and_expired_links_are_refused(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(time_env.client, sqlite_url, secret_key=SECRET) as stack:
        await stack.relance.upsert_contact({"external_id": "v-1", "email": "v1@example.com"})
        good = stack.settings.signer().unsubscribe_token("v-1")
        forged = Signer("another-secret-entirely", 3600).unsubscribe_token("v-1")
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        async with api_client(stack) as web:
            for token in (forged, tampered, "not-a-token"):
                for method in ("GET", "POST"):
                    answer = await web.request(method, f"/u/{token}")
                    assert answer.status_code == 400, (method, token)
                    assert "this unsubscribe link is not valid" in answer.text
            async with stack.sessions() as session:
                assert (await session.scalar(select(Contact))).unsubscribed_at is None  # type: ignore[union-attr]
                assert await session.scalar(select(Consent)) is None

    expiring = Signer(SECRET, unsubscribe_max_age_seconds=1)
    token = expiring.unsubscribe_token("v-1")
    await asyncio.sleep(2.1)
    with pytest.raises(TokenError, match="expired"):
        expiring.read_unsubscribe(token)


@pytest.mark.feature("D-03")
def test_validation_refuses_a_marketing_email_without_unsubscribe_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "promo.subject.j2").write_text("Sale")
    (templates / "promo.txt.j2").write_text("Everything -20%")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "s.yaml").write_text(
        "scenario: s\njourneys:\n  - id: j\n    trigger: {event: purchase}\n    messages:\n"
        "      - id: promo\n        template: promo\n        delay: 1 day\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "relance.cli", "scenarios", "validate", str(scenarios), "--templates", str(templates)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"{scenarios}/s.yaml:7: journeys[0].messages[0].template: a marketing email needs an unsubscribe "
        "link: add {{ links.unsubscribe }} to promo.txt.j2 (and to its .html.j2)"
    )
