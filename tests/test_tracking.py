"""Opens and clicks through signed links, recorded against the delivery (D-09)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.delivery.tracking import PIXEL
from relance.models.tables.delivery import DeliveryEvent
from tests.conftest import api_client, purchase, running_stack

BASE = "https://shop.example"


@pytest.mark.feature("D-09")
async def test_opens_and_clicks_are_recorded_and_clicks_redirect(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    async with running_stack(
        time_env.client, sqlite_url, secret_key="tracking-test-secret", public_url=BASE
    ) as stack:
        async with api_client(stack) as web:
            t0 = await time_env.get_current_time()
            await stack.relance.send_event(purchase(t0, order="T-1", contact="t-1"))
            await time_env.sleep(timedelta(days=4))
            invite = stack.channel.messages[0]  # type: ignore[attr-defined]
            html = invite.html or ""

            assert "https://example.com/referral" not in html  # every web link goes through us
            click_url = html.split('href="', 1)[1].split('"', 1)[0]
            assert click_url.startswith(f"{BASE}/t/c/")
            assert f'href="{BASE}/u/' in html  # the unsubscribe link stays direct
            pixel_url = html.split('<img src="', 1)[1].split('"', 1)[0]
            assert pixel_url.startswith(f"{BASE}/t/o/") and pixel_url.endswith(".gif")
            assert "https://example.com/referral" in invite.text  # the text part is left alone

            opened = await web.get(pixel_url.removeprefix(BASE))
            assert opened.status_code == 200 and opened.content == PIXEL
            assert opened.headers["content-type"] == "image/gif"
            clicked = await web.get(click_url.removeprefix(BASE))
            assert clicked.status_code == 302
            assert clicked.headers["location"] == "https://example.com/referral?contact=t-1"

            forged = await web.get("/t/c/" + click_url.rsplit("/", 1)[1][:-3] + "xyz")
            assert forged.status_code == 404 and "location" not in forged.headers

            async with stack.sessions() as session:
                events = [
                    (e.delivery_key, e.kind, e.url) for e in await session.scalars(select(DeliveryEvent))
                ]
            key = "journey:referral:post_purchase:t-1:T-1:invite:email"
            assert events == [
                (key, "open", None),
                (key, "click", "https://example.com/referral?contact=t-1"),
            ]
