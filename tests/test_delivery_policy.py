"""The send policy on its own: a step's request becomes a neutral Message; the rules, in order.

No database, no Temporal: contacts are unsaved rows, the policy is pure.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

from relance.activities.delivery import REQUEST_FIELDS, STEP_FIELDS, message_of
from relance.delivery.message import Message, Occasion
from relance.delivery.policy import Defer, Go, SendPolicy, Skip
from relance.delivery.pressure import PressurePolicy, Verdict
from relance.delivery.variants import HOLDOUT, variant_of
from relance.models.journey import (
    Anchor,
    Channel,
    DeliveryRequest,
    OnPressure,
    Priority,
    Purpose,
    SkipRequest,
    StepSpec,
    TriggerEvent,
    VariantSpec,
)
from relance.models.tables.contact import Contact

NOON = datetime(2025, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 in Paris
NIGHT = datetime(2025, 3, 10, 22, 30, tzinfo=UTC)  # 23:30 in Paris


def step(**changes: object) -> StepSpec:
    values: dict[str, object] = {
        "id": "invite",
        "channel": Channel.SMS,
        "template": "club/invite",
        "delay_seconds": 0,
        "after": Anchor.TRIGGER,
        "priority": Priority.LOW,
        "on_pressure": OnPressure.DROP,
        "sms_window": ("09:00", "21:00"),
        "variants": [VariantSpec(id="a", template="club/invite"), VariantSpec(id="b", template="club/b")],
        "holdout_percent": 10,
    }
    return StepSpec.model_validate(values | changes)


def request(at: datetime = NOON, **changes: object) -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key="journey:club:w:c-1:1:invite:sms",
        workflow_id="journey:club:w:c-1:1",
        scenario="club",
        journey="w",
        version="v1",
        contact="c-1",
        step=step(**changes),
        trigger=TriggerEvent(event_id=1, type="signup", ref="1", occurred_at=NOON, properties={"k": 1}),
        at=at,
        deferrals=2,
        arbitrate=False,
    )


def contact(**changes: object) -> Contact:
    values: dict[str, object] = {
        "id": 7,
        "external_id": "c-1",
        "email": "c1@example.com",
        "phone": "+33612345678",
        "time_zone": "Europe/Paris",
        "email_status": "ok",
    }
    return Contact(**(values | changes))


def test_the_shared_field_names_exist_on_both_sides() -> None:
    names = {f.name for f in fields(Message)}
    assert names >= STEP_FIELDS | REQUEST_FIELDS
    assert STEP_FIELDS <= set(StepSpec.model_fields)
    assert REQUEST_FIELDS <= set(DeliveryRequest.model_fields)


def test_a_step_request_becomes_a_neutral_message() -> None:
    message = message_of(request())
    assert message.key == "journey:club:w:c-1:1:invite:sms" and message.id == "invite"
    assert message.channel is Channel.SMS and message.priority is Priority.LOW
    assert message.on_pressure is OnPressure.DROP and message.sms_window == ("09:00", "21:00")
    assert [v.id for v in message.variants] == ["a", "b"] and message.holdout_percent == 10
    assert message.occasion == Occasion("signup", NOON, {"k": 1})
    assert (message.deferrals, message.resend, message.arbitrate) == (2, False, False)
    assert message.claim_key.endswith("#2") and message.deferred_key.endswith("#deferred2")
    # The A/B group is the step's: a Message draws the same as the StepSpec it came from.
    for who in ("c-1", "c-2", "c-3"):
        assert variant_of("club", "w", message, who) == variant_of("club", "w", request().step, who)


def test_a_skip_request_has_no_occasion() -> None:
    skip = SkipRequest(
        idempotency_key="k", workflow_id="w", scenario="club", journey="w", contact="c-1",
        step=step(), at=NOON, reason="journey ended",
    )  # fmt: skip
    message = message_of(skip)
    assert message.occasion is None and message.deferrals == 0 and message.arbitrate is True


def test_the_rules_apply_in_order() -> None:
    policy = SendPolicy()
    plain = step(variants=[], holdout_percent=0, purpose=Purpose.TRANSACTIONAL)
    message = message_of(request(variants=[], holdout_percent=0, purpose=Purpose.TRANSACTIONAL))
    assert policy.decide(message, contact(), set(), disabled=True) == Skip("message disabled in the scenario")
    assert policy.decide(message, None, set()) == Skip("contact not found (erased or never imported)")
    assert policy.decide(message, contact(phone=None), set()) == Skip("contact has no phone number")
    assert policy.decide(message, contact(), set()) == Go(to="+33612345678", variant=None)
    night = policy.decide(message_of(request(at=NIGHT, **plain.model_dump())), contact(), set())
    assert isinstance(night, Defer) and night.until == datetime(2025, 3, 11, 8, 0, tzinfo=UTC)
    assert night.reason == "outside SMS hours (09:00–21:00 Europe/Paris): deferred to 2025-03-11T09:00+01:00"


def test_marketing_needs_consent_and_the_holdout_gets_nothing() -> None:
    policy = SendPolicy()
    tested = message_of(request())
    groups = {c: variant_of("club", "w", tested, c) for c in (f"c-{n}" for n in range(200))}
    held = replace(tested, contact=next(c for c, g in groups.items() if g == HOLDOUT))
    free = replace(tested, contact=next(c for c, g in groups.items() if g != HOLDOUT))
    assert policy.decide(held, contact(), set()) == Skip(
        "holdout: in the control group of this message's test, gets no message"
    )
    assert policy.decide(free, contact(), set()) == Skip("no marketing opt-in for sms")
    decided = policy.decide(free, contact(), {("sms", "marketing")})
    assert isinstance(decided, Go) and decided.variant in {"a", "b"}


def test_losing_the_daily_slot_drops_or_defers() -> None:
    policy = SendPolicy(pressure=PressurePolicy(max_per_day=1))
    lost = Verdict(go=False, reason=f"commercial pressure: {policy.pressure.full('2025-03-10')}")
    dropped = policy.after_pressure(message_of(request()), lost, contact())
    assert dropped == Skip(
        "commercial pressure: daily cap of 1 marketing message(s) reached on 2025-03-10: dropped"
    )
    deferred = policy.after_pressure(message_of(request(on_pressure=OnPressure.DEFER)), lost, contact())
    assert isinstance(deferred, Defer) and deferred.until == NOON + timedelta(days=1)
    assert deferred.reason.endswith(": deferred to 2025-03-11T12:00+01:00")
    assert policy.after_pressure(message_of(request()), Verdict(go=True), contact()) is None
    assert policy.pressure.has_room(0) and not policy.pressure.has_room(1)


def test_only_marketing_asks_for_a_slot_and_a_resend_never_does() -> None:
    policy = SendPolicy(pressure=PressurePolicy(max_per_day=1))
    assert policy.capped(message_of(request()))
    assert not policy.capped(message_of(request(purpose=Purpose.LEGAL)))
    resend = request()
    resend.resend = True
    assert not policy.capped(message_of(resend))
    assert not SendPolicy(pressure=PressurePolicy(max_per_day=0)).capped(message_of(request()))
