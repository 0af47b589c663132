"""A person unsubscribes in a real browser: the page, the button, the result (D-03)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.api.app import create_app
from relance.models.tables.contact import Contact
from tests.conftest import free_port, running_stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[object]:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not shutil.which("chromium"):
        reason = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    async with playwright_api.async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield instance
        await instance.close()


async def _serve(app: object, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, task
        await asyncio.sleep(0.05)
    raise RuntimeError("the API did not start")


@pytest.mark.feature("D-03")
async def test_unsubscribe_page_in_chromium(
    browser: object, time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    port = free_port()
    async with running_stack(
        time_env.client, sqlite_url, secret_key="browser-test-secret", public_url=f"http://127.0.0.1:{port}"
    ) as stack:
        await stack.relance.upsert_contact(
            {
                "external_id": "b-1",
                "email": "brigitte@example.com",
                "consents": {"email": {"marketing": True}},
            }
        )
        link = f"http://127.0.0.1:{port}/u/{stack.settings.signer().unsubscribe_token('b-1')}"
        server, task = await _serve(create_app(stack.settings, stack.relance), port)
        try:
            page = await browser.new_page()  # type: ignore[attr-defined]
            await page.goto(link)
            assert await page.title() == "Unsubscribe"
            assert "b***@e***.com" in await page.inner_text("body")
            await page.get_by_role("button", name="Unsubscribe").click()
            await page.wait_for_load_state()
            assert await page.title() == "You are unsubscribed"
            await page.goto(link[:-4] + "abcd")  # a tampered link
            assert await page.title() == "Link not valid"
            await page.close()
        finally:
            server.should_exit = True
            await task
        async with stack.sessions() as session:
            contact = await session.scalar(select(Contact))
            assert contact is not None and contact.unsubscribed_at is not None
