"""The codec server the Temporal UI calls to show operators decrypted payloads (O-07).

Mounted when ``RELANCE_PAYLOAD_KEYS`` is set; guarded by the API keys like ``/v1``
(it turns ciphertext back into personal data). Start the UI with
``--ui-codec-endpoint http://<api>/codec``; its origin must be listed in
``RELANCE_CODEC_CORS_ORIGINS``, since the browser calls us from the UI's page.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from relance.core.codec import CodecError, EncryptionCodec

router = APIRouter(prefix="/codec", tags=["codec"])
preflight = APIRouter(prefix="/codec", include_in_schema=False)


def _cors(request: Request, response: Response) -> Response:
    origin = request.headers.get("origin", "")
    if origin and origin in request.app.state.codec_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Namespace, Authorization"
        response.headers["Vary"] = "Origin"
    return response


def _json(body: dict[str, str], status: int) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


async def _apply(request: Request, decode: bool) -> Response:
    codec: EncryptionCodec = request.app.state.codec
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as error:
        message = f'the body is not Payloads JSON ({{"payloads": [...]}}): {error}'
        return _cors(request, _json({"error": message}, 400))
    try:
        done = await (codec.decode if decode else codec.encode)(list(payloads.payloads))
    except CodecError as error:
        return _cors(
            request, Response(f'{{"error": "{error}"}}', status_code=422, media_type="application/json")
        )
    text = json_format.MessageToJson(Payloads(payloads=done))
    return _cors(request, Response(text, media_type="application/json"))


@router.post("/decode", summary="Decrypt payloads for the Temporal UI")
async def decode(request: Request) -> Response:
    return await _apply(request, decode=True)


@router.post("/encode", summary="Encrypt payloads (the UI's signal and query inputs)")
async def encode(request: Request) -> Response:
    return await _apply(request, decode=False)


@preflight.options("/{action}")
async def allow(action: str, request: Request) -> Response:
    return _cors(request, Response(status_code=204))
