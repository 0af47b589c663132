"""The API's own documentation pages render in a browser with no network but relance itself."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from relance.api.app import create_app
from tests import test_unsubscribe_browser
from tests.conftest import free_port, running_stack

browser = test_unsubscribe_browser.browser  # the shared Chromium fixture


@pytest.mark.feature("O-04")
async def test_swagger_ui_and_redoc_render_offline(
    browser: object, time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    async with running_stack(time_env.client, sqlite_url) as stack:
        server, task = await test_unsubscribe_browser._serve(create_app(stack.settings, stack.relance), port)
        outside: list[str] = []
        try:
            context = await browser.new_context()  # type: ignore[attr-defined]

            async def only_relance(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if url.startswith(origin):
                    await route.continue_()  # type: ignore[attr-defined]
                    return
                # ReDoc's footer shows its maker's logo from their site: an image, nothing the page needs.
                if route.request.resource_type != "image":  # type: ignore[attr-defined]
                    outside.append(url)
                await route.abort()  # type: ignore[attr-defined]

            await context.route("**/*", only_relance)
            page = await context.new_page()
            await page.goto(f"{origin}/docs")
            await page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
            assert "relance" in await page.inner_text(".swagger-ui .info .title")
            await page.wait_for_selector(".opblock-summary-path[data-path='/v1/events']", timeout=15_000)
            await page.goto(f"{origin}/redoc")
            await page.wait_for_selector("redoc h1, [role=search]", timeout=15_000)
            assert "relance" in await page.inner_text("body")
            await context.close()
        finally:
            server.should_exit = True
            await task
        assert outside == [], f"the docs pages need files from outside: {outside}"
