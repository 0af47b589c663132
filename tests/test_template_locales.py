"""Every example template ships in English and French, and both render in the sandbox."""

from __future__ import annotations

import pytest

from relance.templates.engine import LOCALE_TAG, TemplateStore, parts_for, sample_context
from tests.conftest import EXAMPLES

STORE = TemplateStore(EXAMPLES / "templates")
LOCALES = ["fr"]

# What the referral, gift-card and points workflows put in event.properties (one set for all).
PROPERTIES = {
    "order_id": "SAMPLE-1",
    "amount": 50.0,
    "referral_id": "ref-1",
    "sponsor_name": "Léa",
    "reward_amount": 10.0,
    "reward_currency": "EUR",
    "reason": None,
    "reward_code": None,
    "referees": ["Paul", "Zoé"],
    "invited": 2,
    "code": "GC-SAMPLE",
    "url": "https://example.com/gift/GC-SAMPLE",
    "currency": "EUR",
    "balance": 12.5,
    "expires_on": "2027-09-01",
    "key": "r-1",
    "gift": "Tote bag",
    "cost": 120,
    "units_left": 2,
    "reset_url": "https://club.example/password/SAMPLE",
    "contract_url": "https://club.example/contract/SAMPLE",
    "settle_url": "https://club.example/pay/SAMPLE",
    "ends_on": "2027-06-30",
    "until": "2027-01-31",
    "login": "camille.martin",
    "login_url": "https://club.example/login",
    "password_url": "https://club.example/password/new",
    "document": "contract",
    "starts_at": "2026-11-25T16:30:00+01:00",
}


def _defaults() -> list[str]:
    """Template names without a locale infix (``referral/thank_you``, not ``referral/thank_you.fr``)."""
    names = []
    for name in STORE.names():
        stem = name.rsplit("/", 1)[-1]
        if "." in stem and LOCALE_TAG.match(stem.rsplit(".", 1)[1]):
            continue
        names.append(name)
    return sorted(names)


def _channels() -> list[tuple[str, str]]:
    """(template, channel) for each channel a default template has its parts for."""
    return [
        (name, channel)
        for name in _defaults()
        for channel in ("email", "sms")
        if all(STORE.path(name, suffix).is_file() for suffix, required in parts_for(channel) if required)
    ]


def _context(**properties: object) -> dict:
    context = sample_context()
    context["event"] = {**context["event"], "properties": {**PROPERTIES, **properties}}
    return context


def test_the_examples_have_templates() -> None:
    assert "referral/invitation" in _defaults() and "giftcard/delivery" in _defaults()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("name", "channel"), _channels())
def test_every_template_has_a_complete_locale_variant(name: str, channel: str, locale: str) -> None:
    assert locale in STORE.locales(name), f"{name} has no {locale} variant"
    variant = f"{name}.{locale}"
    for suffix, _ in parts_for(channel):
        assert STORE.path(name, suffix).is_file() == STORE.path(variant, suffix).is_file(), (
            f"{variant}.{suffix}.j2 and {name}.{suffix}.j2: one exists without the other"
        )
        if STORE.path(name, suffix).is_file():
            for link in ("unsubscribe", "opt_in"):  # the variant keeps the links the default has
                if STORE.references(name, suffix, "links", link):
                    assert STORE.references(variant, suffix, "links", link), (
                        f"{variant}.{suffix}.j2 lacks links.{link}"
                    )
    assert STORE.check(name, channel) == []


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("name", "channel"), _channels())
@pytest.mark.parametrize(
    "properties",
    [{}, {"reward_code": "MERCI-1", "reason": "order returned", "referees": ["Paul"], "balance": 0.0}],
    ids=["sample", "other-branches"],
)
def test_default_and_locale_variant_render(name: str, channel: str, locale: str, properties: dict) -> None:
    context = _context(**properties)
    default = STORE.render(name, channel, context)
    localized = STORE.render(name, channel, context, locale=f"{locale}-XX")  # falls back to the language
    assert STORE.variant(name, channel, locale) == f"{name}.{locale}"
    assert localized.text.strip() and (channel == "sms" or localized.subject)
    assert (default.html is None) == (localized.html is None)
    assert localized.text != default.text  # the variant was used, not the default
    assert "None" not in (localized.subject or "") + localized.text
