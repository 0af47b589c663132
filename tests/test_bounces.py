"""Bounces and complaints from SES through signed SNS notifications on /webhooks/ses (D-08, C-08).

Messages really go through SES (moto over HTTP); the notifications about them are
signed by a local SNS stand-in whose certificate the webhook fetches over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from relance.channels.router import build_channel
from relance.core.settings import Settings
from relance.models.tables.contact import Consent, Contact
from relance.models.tables.delivery import Delivery, DeliveryEvent
from relance.simulation.run import time_skipping
from tests.aws_peer import MotoServer
from tests.conftest import Stack, api_client, purchase, running_stack
from tests.sns_peer import TOPIC, SnsPeer, bounce, complaint

HOUR = timedelta(hours=1)
SENDER = "shop@example.com"
SCENARIO = """\
scenario: news
journeys:
  - id: welcome
    trigger: {event: purchase, ref: order_id}
    messages:
      - {id: hello, template: referral/post_purchase_invite, delay: 1 hour}
      - {id: again, template: referral/post_purchase_reminder, delay: 3 days}
"""


@pytest.fixture
def sns() -> Iterator[SnsPeer]:
    peer = SnsPeer()
    yield peer
    peer.close()


@asynccontextmanager
async def ses_stack(
    env: WorkflowEnvironment, database_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    (tmp_path / "scenarios").mkdir(exist_ok=True)
    (tmp_path / "scenarios" / "news.yaml").write_text(SCENARIO)
    config = Settings(
        email_channel="ses", aws_region="eu-west-1", aws_endpoint_url=aws.url, email_from=f"Shop <{SENDER}>"
    )
    boto3.client("ses", region_name="eu-west-1", endpoint_url=aws.url).verify_email_identity(
        EmailAddress=SENDER
    )
    async with running_stack(
        env.client,
        database_url,
        scenarios_dir=tmp_path / "scenarios",
        channel=build_channel(config),
        email_from=config.email_from,
        sns_url_pattern=rf"^{sns.url}/",  # the stand-in's certificate, instead of sns.*.amazonaws.com
        ses_topic_arns=TOPIC,
    ) as stack:
        async with api_client(stack) as http:
            yield stack, http


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 20) -> Any:
    """Real parts work asynchronously: wait for the outcome instead of sleeping a fixed time."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def row(stack: Stack, key_suffix: str) -> Delivery | None:
    async with stack.sessions() as session:
        return await session.scalar(select(Delivery).where(Delivery.idempotency_key.endswith(key_suffix)))


async def contact(stack: Stack, external_id: str = "c-1") -> Contact:
    async with stack.sessions() as session:
        found = await session.scalar(select(Contact).where(Contact.external_id == external_id))
        assert found is not None
        return found


async def post(http: httpx.AsyncClient, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    # SNS posts JSON as text/plain.
    return await http.post("/webhooks/ses", content=content, headers={"content-type": "text/plain"})


async def first_message_sent(env: WorkflowEnvironment, stack: Stack, order: str = "O-1") -> Delivery:
    t0 = await env.get_current_time()
    await stack.relance.send_event(purchase(t0, order=order))
    await env.sleep(2 * HOUR)
    sent = await eventually(lambda: row(stack, f":{order}:hello:email"))
    assert sent is not None and sent.status == "sent" and sent.provider_message_id
    return sent


@pytest.mark.feature("D-08")
@pytest.mark.feature("C-08")
async def test_hard_bounce_stops_email_until_the_address_changes(
    time_env: WorkflowEnvironment, sqlite_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> None:
    async with ses_stack(time_env, sqlite_url, aws, sns, tmp_path) as (stack, http):
        hello = await first_message_sent(time_env, stack)
        notification = sns.notification(bounce(hello.provider_message_id or "", "c-1@example.com", hard=True))
        answer = await post(http, notification)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "recorded", "kind": "hard_bounce"}
        # SNS delivers at least once: the same notification again changes nothing.
        assert (await post(http, notification)).json() == {"status": "duplicate", "kind": "hard_bounce"}

        assert (await contact(stack)).email_status == "hard_bounced"
        bounced = await row(stack, ":hello:email")
        assert bounced is not None and bounced.status == "bounced"
        assert bounced.reason == "hard bounce (Permanent/General: smtp; 550 5.1.1 user unknown)"
        async with stack.sessions() as session:
            events = list(await session.scalars(select(DeliveryEvent)))
        assert [(e.delivery_key, e.kind) for e in events] == [(hello.idempotency_key, "hard_bounce")]

        # The reminder three days later is not sent to the invalid address.
        await time_env.sleep(4 * 24 * HOUR)
        again = await eventually(lambda: row(stack, ":O-1:again:email"))
        assert (again.status, again.reason) == ("skipped", "email address hard-bounced")

        # The contact gives a new address: email resumes there, their history stays theirs (C-08).
        before = await contact(stack)
        saved = await http.post("/v1/contacts", json={"external_id": "c-1", "email": "c-1.new@example.com"})
        assert saved.status_code == 200, saved.text
        after = await contact(stack)
        assert (after.id, after.email, after.email_status) == (before.id, "c-1.new@example.com", "ok")
        t1 = await time_env.get_current_time()
        event = purchase(t1, order="O-2")
        event["contact"]["email"] = "c-1.new@example.com"
        await stack.relance.send_event(event)
        await time_env.sleep(2 * HOUR)
        hello2 = await eventually(lambda: row(stack, ":O-2:hello:email"))
        assert (hello2.status, hello2.recipient) == ("sent", "c-1.new@example.com")
        async with stack.sessions() as session:
            history = list(await session.scalars(select(Delivery.contact_id).distinct()))
        assert history == [before.id]
    assert [to for to, _ in aws.sent_emails()] == [["c-1@example.com"], ["c-1.new@example.com"]]


@pytest.mark.feature("D-08")
async def test_soft_bounce_is_tried_three_times_within_a_day_then_left(
    time_env: WorkflowEnvironment, sqlite_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> None:
    async with ses_stack(time_env, sqlite_url, aws, sns, tmp_path) as (stack, http):
        hello = await first_message_sent(time_env, stack)
        attempts = [hello]
        for attempt in (2, 3):
            last = attempts[-1]
            answer = await post(
                http, sns.notification(bounce(last.provider_message_id or "", "c-1@example.com", hard=False))
            )
            assert answer.json() == {"status": "recorded", "kind": "soft_bounce"}
            await time_env.sleep(12 * HOUR)
            resent = await eventually(lambda attempt=attempt: row(stack, f":hello:email#resend{attempt}"))
            assert resent is not None and resent.status == "sent", resent and resent.reason
            assert abs(resent.at - hello.at - (attempt - 1) * 12 * HOUR) < HOUR
            attempts.append(resent)
        answer = await post(
            http,
            sns.notification(bounce(attempts[-1].provider_message_id or "", "c-1@example.com", hard=False)),
        )
        assert answer.json() == {"status": "recorded", "kind": "soft_bounce"}
        handle = stack.client.get_workflow_handle(f"soft-bounce:{hello.idempotency_key}")
        async with time_skipping(stack.client):
            assert await handle.result() == "soft-bounced 3 times within 24 hours: no more attempts"
        planned = await row(stack, ":hello:email")
        assert planned is not None and planned.reason == (
            "soft bounce (Transient/MailboxFull: smtp; 452 4.2.2 mailbox full) — "
            "soft-bounced 3 times within 24 hours: no more attempts"
        )
        person = await contact(stack)
        assert person.email_status == "soft_bounced"  # still a valid address: the next message goes
    assert [to for to, _ in aws.sent_emails()] == [["c-1@example.com"]] * 3


@pytest.mark.feature("D-08")
async def test_a_delivered_retry_ends_the_attempts(
    time_env: WorkflowEnvironment, sqlite_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> None:
    async with ses_stack(time_env, sqlite_url, aws, sns, tmp_path) as (stack, http):
        hello = await first_message_sent(time_env, stack)
        await post(
            http, sns.notification(bounce(hello.provider_message_id or "", "c-1@example.com", hard=False))
        )
        handle = stack.client.get_workflow_handle(f"soft-bounce:{hello.idempotency_key}")
        async with time_skipping(stack.client):
            assert await handle.result() == "attempt 2 was not reported bounced"
    assert len(aws.sent_emails()) == 2


@pytest.mark.feature("D-08")
async def test_complaint_unsubscribes(
    time_env: WorkflowEnvironment, sqlite_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> None:
    async with ses_stack(time_env, sqlite_url, aws, sns, tmp_path) as (stack, http):
        hello = await first_message_sent(time_env, stack)
        answer = await post(
            http, sns.notification(complaint(hello.provider_message_id or "", "c-1@example.com"))
        )
        assert answer.json() == {"status": "recorded", "kind": "complaint"}
        person = await contact(stack)
        assert person.unsubscribed_at is not None
        async with stack.sessions() as session:
            marketing = set(
                await session.execute(
                    select(Consent.channel, Consent.granted).where(Consent.purpose == "marketing")
                )
            )
        assert marketing == {("email", False), ("sms", False)}
        await time_env.sleep(4 * 24 * HOUR)
        again = await eventually(lambda: row(stack, ":O-1:again:email"))
        assert (again.status, again.reason) == ("skipped", "contact unsubscribed from marketing")


@pytest.mark.feature("D-08")
async def test_subscription_is_confirmed(
    time_env: WorkflowEnvironment, sqlite_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> None:
    async with ses_stack(time_env, sqlite_url, aws, sns, tmp_path) as (_, http):
        confirmation = sns.subscription_confirmation()
        answer = await post(http, confirmation)
    assert answer.json() == {"status": "subscribed", "topic": TOPIC}
    assert sns.confirmed == [f"Action=ConfirmSubscription&TopicArn={TOPIC}&Token={confirmation['Token']}"]


def _forged(sns: SnsPeer, message_id: str) -> dict[str, Any]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fields = {k: v for k, v in sns.notification(bounce(message_id, "c-1@example.com", hard=True)).items()}
    return sns.sign({k: v for k, v in fields.items() if k != "Signature"}, key=stranger)


BAD = {
    "not JSON": (lambda sns, mid: b"{nope", 400, "not an SNS message"),
    "not SNS": (lambda sns, mid: {"hello": "world"}, 400, "not an SNS message"),
    "wrong signature": (lambda sns, mid: _forged(sns, mid), 403, "signature does not match"),
    "tampered message": (
        lambda sns, mid: {
            **sns.notification(bounce(mid, "c-1@example.com", hard=False)),
            "Message": json.dumps(bounce(mid, "c-1@example.com", hard=True)),
        },
        403,
        "signature does not match",
    ),
    "certificate elsewhere": (
        lambda sns, mid: sns.notification(
            bounce(mid, "c-1@example.com", hard=True), SigningCertURL="https://evil.example/cert.pem"
        ),
        403,
        "is not an SNS address",
    ),
    "other topic": (
        lambda sns, mid: sns.notification(
            bounce(mid, "c-1@example.com", hard=True), TopicArn="arn:aws:sns:eu-west-1:1:other"
        ),
        403,
        "is not one of RELANCE_SES_TOPIC_ARNS",
    ),
    "not an SES event": (
        lambda sns, mid: sns.notification("plain words"),
        422,
        "the SNS Message is not JSON",
    ),
    "unknown message id": (
        lambda sns, mid: sns.notification(bounce("0000-unknown", "c-1@example.com", hard=True)),
        404,
        "no message of ours has the provider id '0000-unknown'",
    ),
}


@pytest.mark.feature("D-08")
@pytest.mark.parametrize("case", BAD)
async def test_bad_notifications_are_refused_and_change_nothing(
    case: str, time_env: WorkflowEnvironment, sqlite_url: str, aws: MotoServer, sns: SnsPeer, tmp_path: Path
) -> None:
    make, status, error = BAD[case]
    async with ses_stack(time_env, sqlite_url, aws, sns, tmp_path) as (stack, http):
        hello = await first_message_sent(time_env, stack)
        answer = await post(http, make(sns, hello.provider_message_id or ""))
        assert answer.status_code == status, answer.text
        assert error in answer.json()["error"]
        person = await contact(stack)
        assert (person.email_status, person.unsubscribed_at) == ("ok", None)
        unchanged = await row(stack, ":hello:email")
        assert unchanged is not None and unchanged.status == "sent"
        async with stack.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(DeliveryEvent)) == 0
