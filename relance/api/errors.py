"""The API's one error shape and its handlers: ``{"error": ..., "details": [{"field", "message"}]}``.

Bad input is a 4xx a person can act on; a 5xx only says that Temporal or the scenario files are
not usable right now, and what to do.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.service import RPCError

from relance.core.errors import Refused
from relance.scenarios.loader import ScenarioError


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    details: list[ErrorDetail] = []


class NotFound(LookupError):
    pass


class Unauthorized(PermissionError):
    pass


def error_response(status: int, error: str, details: list[ErrorDetail] | None = None) -> JSONResponse:
    body = ErrorBody(error=error, details=details or [])
    return JSONResponse(status_code=status, content=body.model_dump())


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        response = error_response(401, str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for err in exc.errors():
            if err["type"] == "json_invalid":
                ctx = err.get("ctx", {})
                return error_response(
                    400,
                    f"the body is not valid JSON: {ctx.get('error', 'syntax error')} "
                    f"(at character {err['loc'][-1] if err['loc'] else '?'})",
                )
            message = err["msg"].removeprefix("Value error, ")
            details.append(ErrorDetail(field=_field(err["loc"]), message=message))
        return error_response(422, "the request does not match the expected payload", details)

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        detail = [ErrorDetail(field=exc.field, message=exc.message)]
        return error_response(exc.status, exc.title or exc.message, detail)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, str(exc))

    @app.exception_handler(RPCError)
    async def temporal_unavailable(_: Request, exc: RPCError) -> JSONResponse:
        return error_response(
            503,
            f"Temporal did not accept the call ({exc.status.name}: {exc.message}); the event may be "
            "stored: send it again with the same 'id' and its journeys start without duplicates",
        )

    @app.exception_handler(ScenarioError)
    async def broken_scenarios(_: Request, exc: ScenarioError) -> JSONResponse:
        return error_response(503, f"the scenario files are invalid, fix them first: {exc}")
