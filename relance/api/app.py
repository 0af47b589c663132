"""HTTP API for backend services: events in, journeys out.

Errors are JSON objects a person can act on:
``{"error": "...", "details": [{"field": "contact.email", "message": "..."}]}``.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline

from relance.api.bounces import router as webhooks
from relance.api.broadcasts import router as send_routes
from relance.api.codec import preflight
from relance.api.codec import router as codec_routes
from relance.api.contacts import router as contact_routes
from relance.api.errors import Unauthorized, install_handlers
from relance.api.events import router as event_routes
from relance.api.experiments import router as experiment_routes
from relance.api.gift_cards import router as gift_card_routes
from relance.api.imports import router as import_routes
from relance.api.journeys import router as journey_routes
from relance.api.lists import router as list_routes
from relance.api.opt_in import router as opt_in_pages
from relance.api.points import router as points_routes
from relance.api.promo_codes import router as promo_code_routes
from relance.api.referrals import router as referral_routes
from relance.api.reports import router as report_routes
from relance.api.segments import router as segment_routes
from relance.api.text_guard import TextGuard
from relance.api.tracking import router as tracking_links
from relance.api.unsubscribe import router as unsubscribe_pages
from relance.bounces.sns import SnsVerifier
from relance.core.codec import EncryptionCodec, parse_keys
from relance.core.settings import Settings, get_settings
from relance.starter.facade import Relance


def create_app(settings: Settings | None = None, relance: Relance | None = None) -> FastAPI:
    """Build the app; pass ``relance`` to share an existing client (dev stack, tests)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = relance is None
        app.state.relance = relance or await Relance.connect(settings)
        yield
        if owned:
            await app.state.relance.close()

    # The docs pages' scripts and styles are served from the package: /docs works offline.
    app = FastAPIOffline(
        title="relance",
        version="0.1.0",
        summary="Customer journeys on Temporal: send events, inspect and cancel journeys.",
        lifespan=lifespan,
    )
    if relance is not None:
        app.state.relance = relance  # usable without the lifespan (in-process ASGI clients)
    app.add_middleware(TextGuard)
    app.state.signer = settings.signer()
    app.state.sns_verifier = SnsVerifier(
        settings.sns_url_pattern,
        frozenset(arn.strip() for arn in settings.ses_topic_arns.split(",") if arn.strip()),
    )
    app.include_router(unsubscribe_pages)
    app.include_router(opt_in_pages)
    app.include_router(webhooks)
    app.include_router(tracking_links)
    keys = [key.strip() for key in settings.api_keys.split(",") if key.strip()]
    bearer = HTTPBearer(auto_error=False, description="one of RELANCE_API_KEYS")

    async def api_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        """Backend services present an API key; without configured keys the API is open (dev)."""
        if not keys:
            return
        given = credentials.credentials if credentials else ""
        if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>'")

    guarded = [Depends(api_key)]
    app.include_router(event_routes, dependencies=guarded)
    app.include_router(journey_routes, dependencies=guarded)
    app.include_router(list_routes, dependencies=guarded)
    app.include_router(import_routes, dependencies=guarded)
    app.include_router(contact_routes, dependencies=guarded)  # after the import: /v1/contacts/import
    app.include_router(segment_routes, dependencies=guarded)
    app.include_router(send_routes, dependencies=guarded)
    app.include_router(gift_card_routes, dependencies=guarded)
    app.include_router(referral_routes, dependencies=guarded)
    app.include_router(points_routes, dependencies=guarded)
    app.include_router(promo_code_routes, dependencies=guarded)
    app.include_router(report_routes, dependencies=guarded)
    app.include_router(experiment_routes, dependencies=guarded)
    if settings.payload_keys:
        app.state.codec = EncryptionCodec(parse_keys(settings.payload_keys))
        app.state.codec_origins = {o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()}
        app.include_router(preflight)  # browsers send no credentials on preflight
        app.include_router(codec_routes, dependencies=guarded)

    install_handlers(app)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


__all__ = ["create_app"]
