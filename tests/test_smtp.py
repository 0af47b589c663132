"""A journey's messages reach a real SMTP server (aiosmtpd) with both parts and a stable id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from relance.channels.router import build_channel
from relance.channels.smtp import SmtpChannel
from relance.core.settings import Settings
from relance.simulation.run import time_skipping
from tests.conftest import free_port, purchase, running_stack
from tests.smtp_peer import Inbox, start_smtp


@pytest.mark.feature("D-01")
@pytest.mark.feature("R-01")
async def test_post_purchase_messages_go_out_over_smtp(
    time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    inbox, port = Inbox(), free_port()
    controller = start_smtp(inbox, port)
    try:
        async with running_stack(
            time_env.client, sqlite_url, channel=SmtpChannel("127.0.0.1", port)
        ) as stack:
            t0 = await time_env.get_current_time()
            accepted = await stack.relance.send_event(
                {
                    "type": "purchase",
                    "contact": {
                        "external_id": "c-9",
                        "email": "zoe@example.com",
                        "first_name": "<b>Zoé</b>",
                        "consents": {"email": {"marketing": True}},
                    },
                    "occurred_at": t0.isoformat(),
                    "properties": {"order_id": "Z-9"},
                }
            )
            async with time_skipping(stack.client):
                await stack.client.get_workflow_handle(accepted.journeys[0].workflow_id).result()
    finally:
        controller.stop()

    assert [e.rcpt_tos for e in inbox.envelopes] == [["zoe@example.com"], ["zoe@example.com"]]
    invite = inbox.messages[0]
    assert invite["Subject"] == "<b>Zoé</b>, share the love and get rewarded"
    assert invite["Message-ID"].endswith("@relance>")
    parts = {p.get_content_type(): p.get_content() for p in invite.walk() if not p.is_multipart()}
    assert "Hello <b>Zoé</b>," in parts["text/plain"]
    assert "Hello &lt;b&gt;Zoé&lt;/b&gt;," in parts["text/html"]  # autoescaped HTML part
    assert inbox.messages[0]["Message-ID"] != inbox.messages[1]["Message-ID"]


@pytest.mark.feature("D-01")
async def test_file_channel_appends_one_json_line_per_message(
    time_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    channel = build_channel(Settings(channel="file", outbox_file=outbox))
    async with running_stack(time_env.client, sqlite_url, channel=channel) as stack:
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(t0, order="F-1", contact="f-1"))
        async with time_skipping(stack.client):
            await stack.client.get_workflow_handle(accepted.journeys[0].workflow_id).result()
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(m["to"], m["subject"]) for m in lines] == [
        ("f-1@example.com", "Hello, share the love and get rewarded"),
        ("f-1@example.com", "Hello, your friends are still waiting for their offer"),
    ]
    assert lines[0]["idempotency_key"] == "journey:referral:post_purchase:f-1:F-1:invite:email"
