"""Typed search attributes operators filter journeys by in the Temporal UI (J-05)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CONTACT_ID = SearchAttributeKey.for_keyword("ContactId")
SCENARIO = SearchAttributeKey.for_keyword("Scenario")
JOURNEY = SearchAttributeKey.for_keyword("Journey")
SCENARIO_VERSION = SearchAttributeKey.for_keyword("ScenarioVersion")
STEP = SearchAttributeKey.for_keyword("Step")
GIFT_CARD_ID = SearchAttributeKey.for_keyword("GiftCardId")
REFERRAL_ID = SearchAttributeKey.for_keyword("ReferralId")

ALL = [CONTACT_ID, SCENARIO, JOURNEY, SCENARIO_VERSION, STEP, GIFT_CARD_ID, REFERRAL_ID]


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags registering them on ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
