"""Giving, using and following gift cards from the API (and any Python backend)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from relance.core.settings import Settings
from relance.models.gift_card import DEFAULT_TEMPLATES, GiftCardIn, GiftCardInput, GiftCardState, GiftCardUse
from relance.workflows import ids
from relance.workflows.gift_card import GiftCardWorkflow
from relance.workflows.search_attributes import GIFT_CARD_ID


async def give(client: Client, settings: Settings, data: GiftCardIn) -> tuple[str, bool]:
    """Start the card's workflow; the same key twice is one card. Returns (workflow id, new)."""
    wf_id = ids.gift_card(data.key)
    try:
        await client.start_workflow(
            GiftCardWorkflow.run,
            GiftCardInput(
                key=data.key,
                contact=data.contact,
                amount_cents=round(data.amount * 100),
                currency=data.currency,
                validity_months=settings.gift_card_validity_months,
                warning_days=settings.gift_card_warning_days,
                templates=DEFAULT_TEMPLATES,
            ),
            id=wf_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=None,
            memo={"summary": f"gift card {data.key} for {data.contact}: {data.amount} {data.currency}"},
        )
    except WorkflowAlreadyStartedError:
        return wf_id, False
    return wf_id, True


async def use(client: Client, key: str, amount: float) -> None:
    handle = client.get_workflow_handle_for(GiftCardWorkflow.run, ids.gift_card(key))
    await handle.signal(
        GiftCardWorkflow.used, GiftCardUse(amount_cents=round(amount * 100), at=datetime.now(UTC))
    )


async def state(client: Client, key: str) -> GiftCardState:
    return await client.get_workflow_handle_for(GiftCardWorkflow.run, ids.gift_card(key)).query(
        GiftCardWorkflow.state
    )


__all__ = ["GIFT_CARD_ID", "give", "state", "use"]
