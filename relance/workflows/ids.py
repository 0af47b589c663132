"""Every workflow id relance gives, in one place. Workflow-safe: stdlib only.

The formats are part of the public surface (operators search by them, histories carry them,
erasure rewrites them): never change one.
"""

from __future__ import annotations


def part(text: str) -> str:
    """One part of an id: ':' separates parts, so it (and '%') is escaped, keeping ids unambiguous."""
    return text.replace("%", "%25").replace(":", "%3A")


def journey(scenario: str, journey: str, contact: str, ref: str) -> str:
    return f"journey:{scenario}:{journey}:{part(contact)}:{part(ref)}"


def ref_of(journey_id: str) -> str:
    """The ``ref`` part of a journey id, unescaped (``order_id`` 1001 of ``journey:…:1001``)."""
    return journey_id.rsplit(":", 1)[1].replace("%3A", ":").replace("%25", "%")


def referral(referral_id: str) -> str:
    return f"referral:{referral_id}"


def referral_thanks(batch_id: str) -> str:
    return f"referral-thanks:{batch_id}"


def gift_card(key: str) -> str:
    return f"gift-card:{key}"


def gift_card_key(workflow_id: str) -> str:
    """The card's ``key`` back from its workflow id."""
    return workflow_id.removeprefix("gift-card:")


def broadcast(broadcast_id: str) -> str:
    return f"broadcast:{broadcast_id}"


def soft_bounce(delivery_key: str) -> str:
    """The retries of one soft-bounced message, named by the base key of its delivery."""
    return f"soft-bounce:{delivery_key}"
