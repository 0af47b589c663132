"""Personal data in Temporal histories is encrypted, and the UI decodes it through our codec server (O-07)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relance.api.app import create_app
from relance.core.codec import CodecError, EncryptionCodec, new_key, parse_keys
from relance.core.settings import Settings
from relance.devstack.binaries import temporal_cli
from relance.models.journey import JourneyState
from relance.starter.client import temporal_data_converter
from relance.workflows.journey import JourneyWorkflow
from relance.workflows.search_attributes import dev_server_flags
from tests import test_unsubscribe_browser
from tests.conftest import api_client, free_port, purchase, quick_scenario, running_stack

browser = test_unsubscribe_browser.browser  # the Chromium fixture of the unsubscribe page's test
SECRET_NAME = "Eloïse Marchetti"  # appears only in the event's properties, i.e. in the histories
UI_ORIGIN = "http://localhost:8233"


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


@pytest.mark.feature("O-07")
async def test_keys_seal_open_and_rotate() -> None:
    old, new = parse_keys(new_key("old"))[0], parse_keys(new_key("new"))[0]
    sealed = await EncryptionCodec([old]).encode([payload('"secret"')])
    assert sealed[0].metadata["encryption-key-id"] == b"old" and b"secret" not in sealed[0].data
    rotated = EncryptionCodec([new, old])  # the new key encrypts, the old one still opens
    assert (await rotated.decode(sealed))[0].data == b'"secret"'
    assert (await rotated.encode([payload("1")]))[0].metadata["encryption-key-id"] == b"new"
    assert (await rotated.decode([payload("2")]))[0].data == b"2"  # written before encryption
    with pytest.raises(CodecError, match="sealed with the key 'old', which RELANCE_PAYLOAD_KEYS no longer"):
        await EncryptionCodec([new]).decode(sealed)
    tampered = Payload(metadata=sealed[0].metadata, data=sealed[0].data[:-1] + b"x")
    with pytest.raises(CodecError, match="was altered, or the key changed"):
        await rotated.decode([tampered])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "key 1: write it as <id>:<base64 of 32 bytes>"),
        ("k1:???", "key 'k1': the part after ':' is not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "key 'k1': 5 bytes; AES-256 needs 32"),
        (f"{new_key('a')},{new_key('a')}", "the key id 'a' is given twice"),
    ],
)
def test_bad_keys_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(CodecError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_keys(text)


def history_bytes(history: WorkflowHistory) -> bytes:
    return b"".join(event.SerializeToString() for event in history.events)


@pytest_asyncio.fixture
async def sealed_env(tmp_path: Path) -> AsyncIterator[tuple[WorkflowEnvironment, int, int]]:
    """A dev server whose UI asks our API (on ``api_port``) to decode payloads."""
    api_port, ui_port = free_port(), free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,  # this client sees the ciphertext, as the server does
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=[
            "--log-level", "error", "--ui-codec-endpoint", f"http://127.0.0.1:{api_port}/codec",
            *dev_server_flags(),
        ],
    )  # fmt: skip
    async with env:
        yield env, api_port, ui_port


@pytest.mark.feature("O-07")
async def test_histories_hold_ciphertext_and_the_ui_shows_the_plaintext(
    sealed_env: tuple[WorkflowEnvironment, int, int], sqlite_url: str, tmp_path: Path, browser: object
) -> None:
    env, api_port, ui_port = sealed_env
    keys = new_key("k1")
    settings = Settings(payload_keys=keys, codec_cors_origins=f"{UI_ORIGIN},http://127.0.0.1:{ui_port}")
    sealed = await Client.connect(
        env.client.service_client.config.target_host, data_converter=temporal_data_converter(settings)
    )
    scenarios = quick_scenario(tmp_path / "scenarios", name="sealed")
    async with (
        running_stack(sealed, sqlite_url, scenarios_dir=scenarios, payload_keys=keys,
                      codec_cors_origins=settings.codec_cors_origins) as stack,
        api_client(stack) as http,
    ):  # fmt: skip
        event = purchase(await env.get_current_time(), order="E-1", contact="enc-1")
        event["properties"]["ship_to"] = SECRET_NAME
        accepted = await stack.relance.send_event(event)
        wf_id = accepted.journeys[0].workflow_id
        handle = sealed.get_workflow_handle_for(JourneyWorkflow.run, wf_id)
        state: JourneyState | None = None
        for _ in range(100):  # the worker decrypts its input and runs: the invite goes after 1 s
            state = await handle.query(JourneyWorkflow.state)
            if state.current_step == "reminder":
                break
            await asyncio.sleep(0.1)
        assert state is not None and state.current_step == "reminder"

        history = await env.client.get_workflow_handle(wf_id).fetch_history()
        assert SECRET_NAME.encode() not in history_bytes(history)
        started = history.events[0].workflow_execution_started_event_attributes
        assert {p.metadata["encoding"] for p in started.input.payloads} == {b"binary/encrypted"}

        # The codec server, as the UI calls it: CORS for the UI's origin, plaintext back.
        body = json_format.MessageToJson(Payloads(payloads=started.input.payloads))
        headers = {"Origin": UI_ORIGIN, "Content-Type": "application/json", "X-Namespace": "default"}
        preflight = await http.options(
            "/codec/decode", headers={**headers, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
        decoded = await http.post("/codec/decode", content=body, headers=headers)
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
        plain = json_format.Parse(decoded.text, Payloads())
        assert any(SECRET_NAME.encode() in p.data for p in plain.payloads)
        stranger = await http.post(
            "/codec/decode", content=body, headers={**headers, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in stranger.headers
        broken = await http.post("/codec/decode", content=b"{not json", headers=headers)
        assert broken.status_code == 400 and "not Payloads JSON" in broken.json()["error"]

        # What an operator sees: the Temporal UI, decoding through our API.
        server, task = await test_unsubscribe_browser._serve(
            create_app(stack.settings, stack.relance), api_port
        )
        try:
            page = await browser.new_page()  # type: ignore[attr-defined]
            await page.goto(f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/{wf_id}")
            # The workflow's input, decrypted by our API: its first lines are in view (the editor
            # draws only what is visible, so the name further down is not in the page).
            await page.get_by_text("referral/post_purchase_invite").first.wait_for(timeout=30_000)
            await page.close()
        finally:
            server.should_exit = True
            await task
        await handle.terminate("test over")


@pytest.mark.feature("O-07")
async def test_the_codec_server_is_guarded_by_the_api_keys(
    dev_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    keys = new_key("k1")
    async with (
        running_stack(dev_env.client, sqlite_url, payload_keys=keys, api_keys="backend-key") as stack,
        api_client(stack) as http,
    ):
        sealed = await EncryptionCodec(parse_keys(keys)).encode([payload('"x"')])
        body = json_format.MessageToJson(Payloads(payloads=sealed))
        headers = {"Origin": UI_ORIGIN, "Content-Type": "application/json"}
        refused = await http.post("/codec/decode", content=body, headers=headers)
        assert refused.status_code == 401
        allowed = await http.post(
            "/codec/decode", content=body, headers={**headers, "Authorization": "Bearer backend-key"}
        )
        assert allowed.status_code == 200
        assert json_format.Parse(allowed.text, Payloads()).payloads[0].data == b'"x"'
    async with running_stack(dev_env.client, sqlite_url) as plain, api_client(plain) as http:
        assert (await http.post("/codec/decode", content=body)).status_code == 404  # no keys: no codec server
