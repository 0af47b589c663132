"""``POST /webhooks/ses``: bounces and complaints from Amazon SES, delivered by SNS (D-08).

Subscribe it to the SNS topic your SES identity or configuration set publishes
to (HTTPS, raw delivery off). The subscription is confirmed automatically.
Nothing changes unless the SNS signature is valid.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from relance.bounces import service as bounces
from relance.bounces.sns import SnsError, SnsVerifier, parse
from relance.models.journey import SoftBounce, SoftBounceInput
from relance.starter.facade import Relance
from relance.workflows import ids
from relance.workflows.bounce import SoftBounceWorkflow

log = structlog.get_logger("relance.webhooks")
router = APIRouter(tags=["webhooks"])
MAX_BODY = 256 * 1024  # SNS messages are at most 256 KB


def _answer(status: int, error: str) -> JSONResponse:
    return JSONResponse({"error": error, "details": []}, status_code=status)


@router.post("/webhooks/ses", summary="SNS notifications of SES bounces and complaints")
async def ses_notification(request: Request) -> JSONResponse:
    verifier: SnsVerifier = request.app.state.sns_verifier
    body = await request.body()
    if len(body) > MAX_BODY:
        log.warning("webhook.refused", reason="too large", size=len(body))
        return _answer(413, f"the body is larger than {MAX_BODY} bytes: not an SNS message")
    try:
        message = parse(body)
        await verifier.verify(message)
    except SnsError as error:
        log.warning("webhook.refused", reason=str(error))
        status = 400 if str(error).startswith("not an SNS message") else 403
        return _answer(status, str(error))
    if message.type == "SubscriptionConfirmation":
        try:
            await verifier.confirm_subscription(message)
        except SnsError as error:
            log.warning("webhook.subscription_failed", topic=message.topic_arn, reason=str(error))
            return _answer(502, str(error))
        log.info("webhook.subscribed", topic=message.topic_arn)
        return JSONResponse({"status": "subscribed", "topic": message.topic_arn})
    if message.type == "UnsubscribeConfirmation":
        log.warning("webhook.unsubscribed", topic=message.topic_arn)
        return JSONResponse({"status": "noted"})
    try:
        feedback = bounces.parse_ses(message.message)
    except bounces.FeedbackError as error:
        log.warning("webhook.refused", reason=str(error), sns_message=message.message_id)
        return _answer(422, str(error))
    relance = request.app.state.relance
    try:
        recorded = await bounces.record(relance.ingestor.sessions, feedback, message.message_id)
    except bounces.UnknownMessage as error:
        log.warning("webhook.unknown_message", provider_message_id=feedback.message_id)
        return _answer(404, str(error))
    if recorded.kind is bounces.Kind.SOFT_BOUNCE and not recorded.duplicate:
        await _try_again(relance, recorded, feedback)
    return JSONResponse(
        {"status": "duplicate" if recorded.duplicate else "recorded", "kind": recorded.kind.value}
    )


async def _try_again(relance: Relance, recorded: bounces.Recorded, feedback: bounces.Feedback) -> None:
    """One workflow per planned message; bounces of its later attempts are signalled to it."""
    planned = bounces.base_key(recorded.delivery_key)
    try:
        await relance.client.start_workflow(
            SoftBounceWorkflow.run,
            SoftBounceInput(delivery_key=planned, first_sent_at=recorded.first_sent_at),
            id=ids.soft_bounce(planned),
            task_queue=relance.settings.task_queue,
            start_signal="bounced",
            start_signal_args=[SoftBounce(delivery_key=recorded.delivery_key, at=feedback.at)],
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        # Its attempts are over: a late report changes nothing (the next message goes as usual).
        log.info("webhook.late_soft_bounce", key=recorded.delivery_key)
