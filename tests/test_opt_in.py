"""A referee opts in from the invitation, so the invitation reminder may go (R-05, GDPR)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.api.app import create_app
from relance.channels.base import OutgoingMessage
from relance.contacts.consent import granted_consents, ineligibility
from relance.core.tokens import Signer
from relance.models.journey import Channel, Purpose
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent
from tests import test_unsubscribe_browser
from tests.conftest import Stack, api_client, free_port, purchase, running_stack

SECRET = "a-test-secret-of-some-length"
SHOP = "https://shop.example"
OPT_IN_LINK = re.compile(rf"{re.escape(SHOP)}/o/[A-Za-z0-9_.-]+")
browser = test_unsubscribe_browser.browser  # the Chromium fixture of the unsubscribe page's test


def invitation_to(stack: Stack, address: str) -> OutgoingMessage:
    sent = [m for m in stack.channel.messages if m.to == address]  # type: ignore[attr-defined]
    assert len(sent) == 1, [m.subject for m in sent]
    return sent[0]


async def contact_row(stack: Stack, email: str) -> Contact:
    """By address: referees invited by email get an id of the service's choosing."""
    async with stack.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.email == email))
    assert contact is not None
    return contact


@pytest.mark.feature("R-05")
async def test_a_referee_opts_in_from_the_invitation_and_may_get_the_reminder(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with (
        running_stack(time_env.client, sqlite_url, secret_key=SECRET, public_url=SHOP) as stack,
        api_client(stack) as web,
    ):
        t0 = await time_env.get_current_time()
        sponsor = purchase(t0, order="S-1", contact="sam", first_name="Sam", last_name="Martin")
        assert (await web.post("/v1/events", json=sponsor)).status_code == 202
        # Cyd is known already (a newsletter form, say), in French, and never opted in.
        cyd = {"external_id": "cyd", "email": "cyd@example.com", "locale": "fr"}
        assert (await web.post("/v1/contacts", json=cyd)).status_code == 200
        for friend in ("ana", "cyd"):
            referee = {"email": f"{friend}@example.com", "first_name": friend.title()}
            answer = await web.post("/v1/referrals", json={"sponsor": "sam", "referee": referee})
            assert answer.status_code == 201, answer.text
        await time_env.sleep(timedelta(hours=1))  # the invitations are out, the reminders wait

        invitation = invitation_to(stack, "ana@example.com")
        assert "Sam Martin invites you to discover our shop" in invitation.text
        assert f"Unsubscribe: {SHOP}/u/" in invitation.text
        found = OPT_IN_LINK.search(invitation.text)
        assert found is not None, invitation.text
        path = found[0].removeprefix(SHOP)
        ana = await contact_row(stack, "ana@example.com")

        page = await web.get(path)
        assert page.status_code == 200 and '<form method="post"' in page.text
        assert '<html lang="en">' in page.text and "a***@e***.com" in page.text
        async with stack.sessions() as session:  # a GET (a mail scanner) records nothing
            assert await granted_consents(session, ana.id) == set()

        done = await web.post(path)
        assert done.status_code == 200 and "<title>Thank you</title>" in done.text
        again = await web.post(path)  # pressed twice: the same consent, one opt-in for this message
        assert again.status_code == 200

        async with stack.sessions() as session:
            rows = await session.scalars(select(Consent).where(Consent.contact_id == ana.id))
            consents = [(c.channel, c.purpose, c.granted, c.source) for c in rows]
            granted = await granted_consents(session, ana.id)
            events = [(e.delivery_key, e.kind) for e in await session.scalars(select(DeliveryEvent))]
        assert consents == [("email", "marketing", True, "opt_in_link")]
        assert events == [(invitation.idempotency_key, "opt_in")]
        # What every send checks: a reminder (marketing, by email) may now go to Ana.
        assert ineligibility(ana, granted, Channel.EMAIL, Purpose.MARKETING, datetime.now(UTC)) is None

        # Cyd gets the French invitation and page, and does not answer.
        french = invitation_to(stack, "cyd@example.com")
        assert "Sam Martin vous invite à découvrir notre boutique" in french.text
        cyd_link = OPT_IN_LINK.search(french.text)
        assert cyd_link is not None
        cyd_page = await web.get(cyd_link[0].removeprefix(SHOP))
        assert '<html lang="fr">' in cyd_page.text and "Restons en contact" in cyd_page.text

        await time_env.sleep(timedelta(days=8))  # past the reminder (7 days after the invitation)
        async with stack.sessions() as session:
            reminders = {
                r.contact_external_id: (r.status, r.reason)
                for r in await session.scalars(
                    select(Delivery).where(Delivery.message == "invitation_reminder")
                )
            }
    assert reminders == {
        ana.external_id: ("sent", None),
        "cyd": ("skipped", "no marketing opt-in for email"),
    }


@pytest.mark.feature("R-05")
async def test_forged_tampered_expired_and_other_links_are_refused(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with (
        running_stack(time_env.client, sqlite_url, secret_key=SECRET, public_url=SHOP) as stack,
        api_client(stack) as web,
    ):
        known = {"external_id": "v-1", "email": "v1@example.com"}
        assert (await web.post("/v1/contacts", json=known)).status_code == 200
        signer = stack.settings.signer()
        good = signer.opt_in_token("v-1", delivery="d-1")
        refused = {
            "forged": Signer("another-secret-entirely", 3600).opt_in_token("v-1"),
            "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
            "garbage": "not-a-token",
            "an unsubscribe token": signer.unsubscribe_token("v-1"),
            "a tracking token": signer.tracking_token("d-1", "https://example.com"),
            "an unknown channel": signer.opt_in_token("v-1", channel="pigeon"),
            "an unknown contact": signer.opt_in_token("nobody"),
        }
        for what, token in refused.items():
            for method in ("GET", "POST"):
                answer = await web.request(method, f"/o/{token}")
                assert answer.status_code == 400, (what, method)
                assert "this opt-in link is not valid" in answer.text and "Traceback" not in answer.text
        french = await web.get(f"/o/{refused['tampered']}", headers={"accept-language": "fr-FR,fr;q=0.9"})
        assert french.status_code == 400 and "ce lien d&#x27;inscription n&#x27;est pas valide" in french.text
        assert (await web.post(f"/u/{good}")).status_code == 400  # nor does an opt-in token unsubscribe

        # A signer whose links last 0 seconds: the page says expired, not forged.
        short = stack.settings.model_copy(update={"unsubscribe_link_days": 0})
        transport = httpx.ASGITransport(app=create_app(short, stack.relance))
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as expiring:
            old = short.signer().opt_in_token("v-1")
            await asyncio.sleep(1.1)  # timestamps have whole seconds
            answer = await expiring.post(f"/o/{old}")
        assert answer.status_code == 400 and "this opt-in link has expired" in answer.text

        async with stack.sessions() as session:
            assert await session.scalar(select(Consent)) is None
            assert await session.scalar(select(DeliveryEvent)) is None


@pytest.mark.feature("R-05")
async def test_opt_in_page_in_chromium(
    browser: object, time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running_stack(time_env.client, sqlite_url, secret_key=SECRET, public_url=base) as stack:
        await stack.relance.upsert_contact({"external_id": "b-1", "email": "bea@example.com", "locale": "fr"})
        link = f"{base}/o/{stack.settings.signer().opt_in_token('b-1')}"
        server, task = await test_unsubscribe_browser._serve(create_app(stack.settings, stack.relance), port)
        try:
            page = await browser.new_page()  # type: ignore[attr-defined]
            await page.goto(link)
            assert await page.title() == "Restons en contact"
            assert "b***@e***.com" in await page.inner_text("body")
            await page.get_by_role("button", name="Oui, tenez-moi informé").click()
            await page.wait_for_load_state()
            assert await page.title() == "Merci"
            await page.goto(link[:-4] + "abcd")  # a tampered link
            assert await page.title() in ("Link not valid", "Lien non valide")
            await page.close()
        finally:
            server.should_exit = True
            await task
        contact = await contact_row(stack, "bea@example.com")
        async with stack.sessions() as session:
            assert await granted_consents(session, contact.id) == {("email", "marketing")}


@pytest.mark.feature("R-05")
async def test_an_opt_in_after_an_unsubscribe_brings_back_that_channel_only(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with (
        running_stack(time_env.client, sqlite_url, secret_key=SECRET, public_url=SHOP) as stack,
        api_client(stack) as web,
    ):
        t0 = await time_env.get_current_time()
        person = {"external_id": "uma", "email": "uma@example.com", "phone": "+33611223344",
                  "consents": {"email": {"marketing": True}, "sms": {"marketing": True}}}  # fmt: skip
        assert (await web.post("/v1/contacts", json=person)).status_code == 200
        gone = {"type": "unsubscribed", "contact": {"external_id": "uma"},
                "occurred_at": (t0 - timedelta(hours=1)).isoformat()}  # fmt: skip
        assert (await web.post("/v1/events", json=gone)).status_code == 202
        token = Signer(SECRET, 3600).opt_in_token("uma", "email")
        assert (await web.post(f"/o/{token}")).status_code == 200
        contact = await contact_row(stack, "uma@example.com")
        async with stack.sessions() as session:
            granted = await granted_consents(session, contact.id)
    later = datetime.now(UTC)
    assert contact.unsubscribed_at is None
    assert ineligibility(contact, granted, Channel.EMAIL, Purpose.MARKETING, later) is None
    assert (
        ineligibility(contact, granted, Channel.SMS, Purpose.MARKETING, later)
        == "no marketing opt-in for sms"
    )
