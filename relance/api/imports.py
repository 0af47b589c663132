"""``POST /v1/contacts/import``: CSV import over HTTP (same rules as ``relance contacts import``).

The CSV is the request body. Answers the import report: 200 when imported, 422 when
rejected rows refuse the all-or-nothing import (nothing written), 400 when the CSV
cannot be read or its header is wrong, or when ``certify=true`` is missing.
"""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from relance.api.errors import ErrorDetail, error_response
from relance.imports.entry import check_ready, entry_sender
from relance.imports.errors import ImportFileError, SetupError
from relance.imports.options import ImportOptions
from relance.imports.run import import_csv, prepare
from relance.starter.facade import Relance

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

SPOOL_IN_MEMORY = 16 << 20  # larger bodies go to a temporary file: memory stays bounded


@router.post(
    "/import",
    responses={
        200: {"description": "the import report: accepted, updated, rejected, excluded_three_year_rule"},
        400: {"description": "unreadable CSV, wrong header, or certify=true missing"},
        422: {"description": "rows rejected: nothing imported (the report lists them)"},
        503: {"description": "RELANCE_IMPORT_EVENT is set and Temporal does not answer"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_contacts(
    request: Request,
    certify: bool = Query(
        False, description="required: you certify these contacts gave the consents the file states"
    ),
    separator: str | None = Query(None, description="',' ';' '|' or tab; default: read from the header"),
    encoding: str | None = Query(None, description="default: UTF-8 (BOM or not), else Latin-1"),
    list_name: str | None = Query(None, alias="list", description="put the contacts in this list"),
    skip_invalid: bool = Query(False, description="import the valid rows even when others are rejected"),
    default_region: str = Query("FR", description="country of phone numbers written without +code"),
) -> JSONResponse:
    """Import contacts from the CSV body (text/csv): new ones created, known ones updated."""
    if not certify:
        message = (
            "add certify=true to the query: it certifies that these contacts gave the consents the file "
            "states and that you may use this list"
        )
        return error_response(400, message, [ErrorDetail(field="certify", message=message)])
    relance: Relance = request.app.state.relance
    settings = relance.settings
    options = ImportOptions(
        separator=separator,
        encoding=encoding,
        default_region=default_region,
        default_time_zone=settings.default_time_zone,
        skip_invalid=skip_invalid,
        list_name=list_name,
    )
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
        async for chunk in request.stream():
            body.write(chunk)
        try:
            prepared = prepare(body, options, digest=bool(settings.import_event))
            committed = None
            if settings.import_event:
                await check_ready(relance, settings.import_event)
                assert prepared.sha256 is not None
                committed = entry_sender(relance, settings.import_event, prepared.sha256)
            report = await import_csv(relance.engine, prepared, options, committed=committed)
        except ImportFileError as error:
            return error_response(400, f"the CSV cannot be imported: {error}", _details(error))
        except SetupError as error:
            return error_response(503, str(error))
    content: dict[str, Any] = report.as_json()
    refused = bool(report.rejected_count) and not skip_invalid
    return JSONResponse(status_code=422 if refused else 200, content=content)


def _details(error: ImportFileError) -> list[ErrorDetail]:
    if error.problems:
        return [ErrorDetail(field=p.field, message=p.message) for p in error.problems]
    field = f"line {error.line}" if error.line is not None else "body"
    return [ErrorDetail(field=field, message=error.message)]
