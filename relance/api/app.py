"""HTTP API for backend services: events in, journeys out.

Errors are JSON objects a person can act on:
``{"error": "...", "details": [{"field": "contact.email", "message": "..."}]}``.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from relance.api.bounces import router as webhooks
from relance.api.broadcasts import router as send_routes
from relance.api.erasure import router as erasure_routes
from relance.api.experiments import router as experiment_routes
from relance.api.gift_cards import router as gift_card_routes
from relance.api.imports import router as import_routes
from relance.api.lists import router as list_routes
from relance.api.opt_in import router as opt_in_pages
from relance.api.points import router as points_routes
from relance.api.promo_codes import router as promo_code_routes
from relance.api.referrals import router as referral_routes
from relance.api.reports import router as report_routes
from relance.api.segments import router as segment_routes
from relance.api.tracking import router as tracking_links
from relance.api.unsubscribe import router as unsubscribe_pages
from relance.bounces.sns import SnsVerifier
from relance.core.errors import Refused
from relance.core.settings import Settings, get_settings
from relance.models.event import CancelIn, ContactIn, ContactSaved, EventAccepted, EventIn
from relance.models.journey import JourneyState
from relance.scenarios.loader import ScenarioError
from relance.starter.facade import Relance


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    details: list[ErrorDetail] = []


class CancelAccepted(BaseModel):
    workflow_id: str
    status: str = "cancelling"


class NotFound(LookupError):
    pass


class Unauthorized(PermissionError):
    pass


def _error(status: int, error: str, details: list[ErrorDetail] | None = None) -> JSONResponse:
    body = ErrorBody(error=error, details=details or [])
    return JSONResponse(status_code=status, content=body.model_dump())


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


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

    app = FastAPI(
        title="relance",
        version="0.1.0",
        summary="Customer journeys on Temporal: send events, inspect and cancel journeys.",
        lifespan=lifespan,
    )
    if relance is not None:
        app.state.relance = relance  # usable without the lifespan (in-process ASGI clients)
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
    app.include_router(list_routes, dependencies=guarded)
    app.include_router(import_routes, dependencies=guarded)
    app.include_router(segment_routes, dependencies=guarded)
    app.include_router(send_routes, dependencies=guarded)
    app.include_router(gift_card_routes, dependencies=guarded)
    app.include_router(referral_routes, dependencies=guarded)
    app.include_router(points_routes, dependencies=guarded)
    app.include_router(promo_code_routes, dependencies=guarded)
    app.include_router(report_routes, dependencies=guarded)
    app.include_router(erasure_routes, dependencies=guarded)
    app.include_router(experiment_routes, dependencies=guarded)
    if settings.payload_keys:
        from relance.api.codec import preflight
        from relance.api.codec import router as codec_routes
        from relance.core.codec import EncryptionCodec, parse_keys

        app.state.codec = EncryptionCodec(parse_keys(settings.payload_keys))
        app.state.codec_origins = {o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()}
        app.include_router(preflight)  # browsers send no credentials on preflight
        app.include_router(codec_routes, dependencies=guarded)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        response = _error(401, str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            if err["type"] == "json_invalid":
                ctx = err.get("ctx", {})
                return _error(
                    400,
                    f"the body is not valid JSON: {ctx.get('error', 'syntax error')} "
                    f"(at character {err['loc'][-1] if err['loc'] else '?'})",
                )
            message = err["msg"].removeprefix("Value error, ")
            details.append(ErrorDetail(field=_field(err["loc"]), message=message))
        return _error(422, "the request does not match the expected payload", details)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        detail = [ErrorDetail(field=exc.field, message=exc.message)]
        return _error(exc.status, exc.title or exc.message, detail)

    @app.exception_handler(RPCError)
    async def temporal_unavailable(_: Request, exc: RPCError) -> JSONResponse:
        return _error(
            503,
            f"Temporal did not accept the call ({exc.status.name}: {exc.message}); the event may be "
            "stored: send it again with the same 'id' and its journeys start without duplicates",
        )

    @app.exception_handler(ScenarioError)
    async def broken_scenarios(_: Request, exc: ScenarioError) -> JSONResponse:
        return _error(503, f"the scenario files are invalid, fix them first: {exc}")

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/events", status_code=202, response_model=EventAccepted, dependencies=guarded)
    async def post_event(event: EventIn, request: Request) -> EventAccepted:
        return await request.app.state.relance.send_event(event)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.post("/v1/contacts", response_model=ContactSaved, dependencies=guarded)
    async def post_contact(contact: ContactIn, request: Request) -> ContactSaved:
        """Create or update a contact, its consents included (upsert on external_id, else email)."""
        return await request.app.state.relance.upsert_contact(contact)

    @app.get("/v1/journeys/{workflow_id}", response_model=JourneyState, dependencies=guarded)
    async def journey_state(workflow_id: str, request: Request) -> JourneyState:
        try:
            return await request.app.state.relance.journey_state(workflow_id)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no journey with id '{workflow_id}'") from error
            raise

    @app.post("/v1/journeys/{workflow_id}/cancel", status_code=202, dependencies=guarded)
    async def cancel(workflow_id: str, body: CancelIn, request: Request) -> CancelAccepted:
        try:
            await request.app.state.relance.cancel_journey(workflow_id, body.reason)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no running journey with id '{workflow_id}'") from error
            raise
        return CancelAccepted(workflow_id=workflow_id)

    return app


__all__ = ["create_app"]
