"""The pages behind unsubscribe links (D-03).

``GET /u/{token}`` asks for confirmation (mail scanners follow links: a GET
never unsubscribes); ``POST /u/{token}`` unsubscribes, and is also what a
mailbox's one-click button sends (RFC 8058, ``List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from relance.contacts.consent import unsubscribe
from relance.core.logs import mask_text
from relance.core.tokens import TokenError
from relance.models.tables.contact import Contact
from relance.models.tables.delivery import DeliveryEvent

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;background:#222;color:#fff}}
</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status_code=status)


def _invalid(error: TokenError) -> HTMLResponse:
    return _page("Link not valid", f"<p>{escape(str(error))}.</p>", status=400)


async def _contact(request: Request, token: str) -> Contact | TokenError:
    try:
        data = request.app.state.signer.read_unsubscribe(token)
    except TokenError as error:
        return error
    async with request.app.state.relance.ingestor.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.external_id == data.contact))
    return contact if contact is not None else TokenError("this unsubscribe link is not valid")


@router.get("/u/{token}", response_class=HTMLResponse)
async def confirm(token: str, request: Request) -> HTMLResponse:
    contact = await _contact(request, token)
    if isinstance(contact, TokenError):
        return _invalid(contact)
    who = escape(mask_text(contact.email or contact.external_id))
    return _page(
        "Unsubscribe",
        f"<p>Stop marketing messages to <strong>{who}</strong>? "
        "You will still receive messages about your orders and your account.</p>"
        f'<form method="post" action="/u/{escape(token)}"><button type="submit">Unsubscribe</button></form>',
    )


@router.post("/u/{token}", response_class=HTMLResponse)
async def confirmed(token: str, request: Request) -> HTMLResponse:
    contact = await _contact(request, token)
    if isinstance(contact, TokenError):
        return _invalid(contact)
    delivery = request.app.state.signer.read_unsubscribe(token).delivery
    sessions = request.app.state.relance.ingestor.sessions
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await session.get(Contact, contact.id)
        assert row is not None
        await unsubscribe(session, row, now, source="link")
        if delivery is not None:
            # Counted once per message, however often the button is pressed.
            seen = await session.scalar(
                select(DeliveryEvent.id).where(
                    DeliveryEvent.delivery_key == delivery, DeliveryEvent.kind == "unsubscribe"
                )
            )
            if seen is None:
                session.add(DeliveryEvent(delivery_key=delivery, kind="unsubscribe", at=now))
    return _page("You are unsubscribed", "<p>You will not receive marketing messages any more.</p>")
