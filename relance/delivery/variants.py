"""A/B variants and holdout groups of a message (A-04).

A message may come in several versions (``variants``) and keep a share of its
contacts as a control group that gets nothing (``holdout``). Who gets what is
a pure function of the scenario, journey, message and contact: the same
contact always lands in the same group, on any worker, on every retry, and the
ledger records the group (``deliveries.variant``) for the analysis
(``reports/experiments.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from relance.models.journey import VariantSpec

HOLDOUT = "holdout"


class Tested(Protocol):
    """A message that may be under test: a journey step, or a message of the send policy."""

    @property
    def id(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def variants(self) -> Sequence[VariantSpec]: ...
    @property
    def holdout_percent(self) -> int: ...


def variant_of(scenario: str, journey: str, step: Tested, contact: str) -> str | None:
    """The contact's group for this message: a variant id, ``holdout``, or None without a test."""
    if not step.variants and not step.holdout_percent:
        return None
    digest = hashlib.sha256(f"{scenario}\x1f{journey}\x1f{step.id}\x1f{contact}".encode()).digest()
    # Two independent draws: being held out does not bias which variant the others get.
    if int.from_bytes(digest[:8], "big") / 2**64 < step.holdout_percent / 100:
        return HOLDOUT
    variants = step.variants or []
    if not variants:
        return "a"
    point = int.from_bytes(digest[8:16], "big") / 2**64 * sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant.id
    return variants[-1].id


def template_of(step: Tested, variant: str | None) -> str:
    for candidate in step.variants or []:
        if candidate.id == variant:
            return candidate.template
    return step.template
