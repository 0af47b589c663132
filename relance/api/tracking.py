"""``/t/o/{token}.gif`` records an open, ``/t/c/{token}`` a click then redirects (D-09)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from relance.core.tokens import TokenError, TrackingToken
from relance.delivery.tracking import PIXEL
from relance.models.tables.delivery import DeliveryEvent

router = APIRouter(include_in_schema=False)
_NO_CACHE = {"Cache-Control": "no-store, max-age=0"}


async def _record(request: Request, token: TrackingToken, kind: str) -> None:
    async with request.app.state.relance.ingestor.sessions() as session, session.begin():
        session.add(
            DeliveryEvent(delivery_key=token.delivery, kind=kind, url=token.url, at=datetime.now(UTC))
        )


@router.get("/t/o/{token}.gif")
async def opened(token: str, request: Request) -> Response:
    try:
        read = request.app.state.signer.read_tracking(token)
    except TokenError:
        return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)  # never a broken image
    await _record(request, read, "open")
    return Response(PIXEL, media_type="image/gif", headers=_NO_CACHE)


@router.get("/t/c/{token}")
async def clicked(token: str, request: Request) -> Response:
    try:
        read = request.app.state.signer.read_tracking(token)
    except TokenError:
        # Never redirect on an unsigned URL: that would be an open redirect.
        return Response("This link is not valid.", status_code=404, media_type="text/plain")
    if read.url is None:
        return Response("This link is not valid.", status_code=404, media_type="text/plain")
    await _record(request, read, "click")
    return RedirectResponse(read.url, status_code=302, headers=_NO_CACHE)
