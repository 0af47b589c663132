"""The pages behind opt-in links (R-05): a referee accepts marketing messages.

A referee gets the invitation because a friend asked, not because they agreed
to anything; the invitation reminder is marketing and goes only to those who
opted in (GDPR). ``GET /o/{token}`` asks for confirmation (mail scanners
follow links: a GET never records consent); ``POST /o/{token}`` records it.
Pages are in French for contacts whose locale is French, else in English.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from relance.contacts.consent import set_consents
from relance.core.logs import mask_text
from relance.core.tokens import OptInToken, TokenError, TokenExpired
from relance.models.journey import Channel, Purpose
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import DeliveryEvent

router = APIRouter(include_in_schema=False)

Language = Literal["en", "fr"]
SOURCE = "opt_in_link"  # the consent's source, so an audit tells link opt-ins from imports

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;background:#222;color:#fff}}
</style>
</head><body><h1>{title}</h1>{body}</body></html>"""

_TEXT: dict[Language, dict[str, str]] = {
    "en": {
        "invalid_title": "Link not valid",
        "invalid": "this opt-in link is not valid",
        "expired": "this opt-in link has expired",
        "title": "Keep in touch",
        "question": "Receive our news and offers by {channel} at <strong>{who}</strong>? "
        "You can unsubscribe at any time with the link in each message.",
        "button": "Yes, keep me informed",
        "done_title": "Thank you",
        "done": "You will receive our news and offers by {channel}. Each message has a link to unsubscribe.",
        "email": "email",
        "sms": "SMS",
    },
    "fr": {
        "invalid_title": "Lien non valide",
        "invalid": "ce lien d'inscription n'est pas valide",
        "expired": "ce lien d'inscription a expiré",
        "title": "Restons en contact",
        "question": "Recevoir nos actualités et nos offres par {channel} à <strong>{who}</strong> ? "
        "Vous pourrez vous désabonner à tout moment avec le lien présent dans chaque message.",
        "button": "Oui, tenez-moi informé",
        "done_title": "Merci",
        "done": "Vous recevrez nos actualités et nos offres par {channel}. "
        "Chaque message contient un lien pour vous désabonner.",
        "email": "email",
        "sms": "SMS",
    },
}


def _page(lang: Language, title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(lang=lang, title=escape(title), body=body), status_code=status)


def _language(locale: str | None) -> Language | None:
    if locale and locale.strip().lower().replace("_", "-").split("-")[0] == "fr":
        return "fr"
    return "en" if locale else None


def _browser_language(request: Request) -> Language:
    """For pages without a contact (bad links): the browser's first preference."""
    first = request.headers.get("accept-language", "").split(",")[0].split(";")[0]
    return _language(first) or "en"


def _invalid(request: Request, error: TokenError) -> HTMLResponse:
    lang = _browser_language(request)
    text = _TEXT[lang]
    message = text["expired"] if isinstance(error, TokenExpired) else text["invalid"]
    return _page(lang, text["invalid_title"], f"<p>{escape(message)}.</p>", status=400)


async def _read(request: Request, token: str) -> tuple[OptInToken, Contact] | TokenError:
    try:
        data = request.app.state.signer.read_opt_in(token)
    except TokenError as error:
        return error
    if data.channel not in {c.value for c in Channel}:
        return TokenError("this opt-in link is not valid")
    async with request.app.state.relance.ingestor.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.external_id == data.contact))
    if contact is None:  # erased since the message went out
        return TokenError("this opt-in link is not valid")
    return data, contact


@router.get("/o/{token}", response_class=HTMLResponse)
async def confirm(token: str, request: Request) -> HTMLResponse:
    read = await _read(request, token)
    if isinstance(read, TokenError):
        return _invalid(request, read)
    data, contact = read
    lang = _language(contact.locale) or _browser_language(request)
    text = _TEXT[lang]
    address = contact.email if data.channel == Channel.EMAIL.value else contact.phone
    who = escape(mask_text(address or contact.external_id))
    return _page(
        lang,
        text["title"],
        f"<p>{text['question'].format(channel=text[data.channel], who=who)}</p>"
        f'<form method="post" action="/o/{escape(token)}">'
        f'<button type="submit">{escape(text["button"])}</button></form>',
    )


@router.post("/o/{token}", response_class=HTMLResponse)
async def confirmed(token: str, request: Request) -> HTMLResponse:
    read = await _read(request, token)
    if isinstance(read, TokenError):
        return _invalid(request, read)
    data, contact = read
    now = datetime.now(UTC)
    async with request.app.state.relance.ingestor.sessions() as session, session.begin():
        # An upsert: pressing the button again restates the same consent.
        await set_consents(session, contact.id, {data.channel: {Purpose.MARKETING.value: True}}, SOURCE, now)
        row = await session.get(Contact, contact.id)
        if row is not None and row.unsubscribed_at is not None and row.unsubscribed_at <= now:
            # A later, explicit yes outweighs the earlier unsubscribe; the other channels' consents
            # stay refused (the unsubscribe withdrew them), so only this channel comes back.
            row.unsubscribed_at = None
        if data.delivery is not None:
            # Counted once per message, however often the button is pressed.
            seen = await session.scalar(
                select(DeliveryEvent.id).where(
                    DeliveryEvent.delivery_key == data.delivery, DeliveryEvent.kind == "opt_in"
                )
            )
            if seen is None:
                session.add(DeliveryEvent(delivery_key=data.delivery, kind="opt_in", at=now))
    lang = _language(contact.locale) or _browser_language(request)
    text = _TEXT[lang]
    done = text["done"].format(channel=text[data.channel])
    return _page(lang, text["done_title"], f"<p>{escape(done)}</p>")
