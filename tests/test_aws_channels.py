"""Email through Amazon SES v2 and SMS through Amazon SNS: real boto3 clients, moto over HTTP (D-01)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from relance.channels.aws import classify
from relance.channels.base import PermanentSendError, TransientSendError
from relance.channels.router import build_channel
from relance.core.settings import Settings
from relance.models.tables.delivery import Delivery
from relance.simulation.run import time_skipping
from tests.aws_peer import MotoServer
from tests.conftest import free_port, purchase, running_stack

REGION = "eu-west-1"
SENDER = "shop@example.com"


def settings(aws: MotoServer, **overrides: str) -> Settings:
    return Settings(
        email_channel="ses",
        sms_channel="sns",
        aws_region=REGION,
        aws_endpoint_url=aws.url,
        email_from=f"Shop <{SENDER}>",
        **overrides,  # type: ignore[arg-type]
    )


def sms_scenario(tmp_path: Path) -> tuple[Path, Path]:
    scenarios, templates = tmp_path / "scenarios", tmp_path / "templates"
    scenarios.mkdir()
    (templates / "club").mkdir(parents=True)
    (templates / "club" / "code.sms.j2").write_text(
        "{{ contact.first_name }}, your signature code: {{ event.properties.code }}"
    )
    (scenarios / "club.yaml").write_text(
        "scenario: club\njourneys:\n  - id: signature\n    trigger: {event: contract_ready}\n"
        "    messages:\n      - id: code\n        channel: sms\n        template: club/code\n"
        "        purpose: legal\n"
    )
    return scenarios, templates


@pytest.mark.feature("D-01")
async def test_email_goes_through_ses_with_our_headers(
    aws: MotoServer, time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    config = settings(aws)
    boto3.client("ses", region_name=REGION, endpoint_url=aws.url).verify_email_identity(EmailAddress=SENDER)
    async with running_stack(
        time_env.client, sqlite_url, channel=build_channel(config), email_from=config.email_from
    ) as stack:
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(t0, order="S-1", contact="s-1", first_name="Sam"))
        async with time_skipping(stack.client):
            await stack.client.get_workflow_handle(accepted.journeys[0].workflow_id).result()
        async with stack.sessions() as session:
            rows = list(await session.scalars(select(Delivery).order_by(Delivery.id)))

    sent = aws.sent_emails()
    assert [to for to, _ in sent] == [["s-1@example.com"], ["s-1@example.com"]]
    invite = sent[0][1]
    assert invite["Subject"] == "Sam, share the love and get rewarded"
    assert invite["From"] == f"Shop <{SENDER}>"
    assert invite["Message-ID"].endswith("@relance>")
    assert {p.get_content_type() for p in invite.walk()} >= {"text/plain", "text/html"}
    assert [(r.status, r.provider) for r in rows] == [("sent", "ses"), ("sent", "ses")]
    assert all(r.provider_message_id for r in rows)


@pytest.mark.feature("D-01")
async def test_ses_rejection_is_recorded_not_retried(
    aws: MotoServer, time_env: WorkflowEnvironment, sqlite_url: str
) -> None:
    config = settings(aws)  # the sender identity is not verified: SES refuses
    async with running_stack(
        time_env.client, sqlite_url, channel=build_channel(config), email_from=config.email_from
    ) as stack:
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(purchase(t0, order="S-2", contact="s-2"))
        async with time_skipping(stack.client):
            await stack.client.get_workflow_handle(accepted.journeys[0].workflow_id).result()
        async with stack.sessions() as session:
            rows = list(await session.scalars(select(Delivery).order_by(Delivery.id)))
    assert [r.status for r in rows] == ["failed", "failed"]
    assert rows[0].reason is not None and rows[0].reason.startswith("MessageRejected")
    assert rows[0].attempts == 1
    assert aws.sent_emails() == []


@pytest.mark.feature("D-01")
async def test_sms_goes_through_sns(
    aws: MotoServer, time_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    scenarios, templates = sms_scenario(tmp_path)
    config = settings(aws)
    async with running_stack(
        time_env.client, sqlite_url, scenarios_dir=scenarios, templates_dir=templates,
        channel=build_channel(config),
    ) as stack:  # fmt: skip
        t0 = await time_env.get_current_time()
        accepted = await stack.relance.send_event(
            {
                "type": "contract_ready",
                "contact": {"external_id": "m-1", "phone": "+33 6 12 34 56 78", "first_name": "Mia"},
                "occurred_at": t0.isoformat(),
                "properties": {"code": "482913"},
            }
        )
        async with time_skipping(stack.client):
            await stack.client.get_workflow_handle(accepted.journeys[0].workflow_id).result()
    assert aws.sent_sms(REGION) == [("+33612345678", "Mia, your signature code: 482913")]


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("TooManyRequestsException", 429, TransientSendError),
        ("Throttling", 400, TransientSendError),
        ("InternalFailure", 500, TransientSendError),
        ("ServiceUnavailable", 503, TransientSendError),
        ("MessageRejected", 400, PermanentSendError),
        ("AccountSuspendedException", 400, PermanentSendError),
        ("InvalidParameter", 400, PermanentSendError),
    ],
)
def test_provider_errors_are_classified(code: str, status: int, kind: type[Exception]) -> None:
    assert isinstance(classify(_client_error(code, status)), kind)


def test_unreachable_endpoint_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("sesv2", region_name=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Exception) as caught:
        client.send_email(
            FromEmailAddress=SENDER, Destination={"ToAddresses": ["x@example.com"]},
            Content={"Raw": {"Data": b"Subject: x\r\n\r\nx"}},
        )  # fmt: skip
    assert isinstance(classify(caught.value), TransientSendError)
