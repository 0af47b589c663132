"""Text that cannot be stored is refused at the edge, naming the field.

PostgreSQL refuses the NUL character in text and JSON columns, and a lone UTF-16 surrogate
(``"\\ud800"`` in JSON) cannot be encoded as UTF-8 at all. Either would otherwise fail deep in
a request (a 500) or, once stored, break every report that reads it. So every path, query
parameter and JSON body string (keys included) is checked before any route runs, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relance.api.errors import ErrorDetail, error_response
from relance.core.text import problem, unstorable

MAX_CHECKED_BODY = 32 << 20  # larger JSON bodies are left to the routes' own limits


def _in_url(scope: Scope) -> Iterator[tuple[str, str]]:
    if (why := problem(scope.get("path", ""))) is not None:
        yield "path", why
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="surrogateescape"):
        for text in (name, value):
            if (why := problem(text)) is not None:
                yield f"query.{name if problem(name) is None else repr(name)}", why
                break


def _is_json(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            return value.split(b";")[0].strip().lower() in (b"application/json", b"")
    return scope.get("method") in ("POST", "PUT", "PATCH")  # FastAPI parses JSON without the header


class TextGuard:
    """ASGI middleware: a 422 in the API's error shape when any text cannot be stored."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = list(_in_url(scope))
        if not found and scope.get("method") in ("POST", "PUT", "PATCH", "DELETE") and _is_json(scope):
            body, receive = await _buffered(receive)
            if 0 < len(body) <= MAX_CHECKED_BODY:
                try:
                    data = json.loads(body)
                except (ValueError, RecursionError):
                    data = None  # the route answers malformed JSON itself
                found = list(unstorable(data, []))
        if found:
            details = [ErrorDetail(field=field, message=why) for field, why in found[:20]]
            response = error_response(422, "the request contains text that cannot be stored", details)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a ``receive`` that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
