"""``/v1/contacts``: create or update a contact (``POST``), erase one (``DELETE``, GDPR; see
relance.contacts.erasure).

The CSV import (``POST /v1/contacts/import``) is relance.api.imports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from relance.api.deps import relance as facade
from relance.contacts.erasure import ErasureReport, UnknownContact
from relance.models.event import ContactIn, ContactSaved

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])


@router.post("", response_model=ContactSaved)
async def post_contact(contact: ContactIn, request: Request) -> ContactSaved:
    """Create or update a contact, its consents included (upsert on external_id, else email)."""
    return await facade(request).upsert_contact(contact)


@router.delete(
    "/{external_id:path}",
    response_model=ErasureReport,
    summary="Erase a contact: stop their journeys, purge their personal data, keep anonymous counts",
    responses={404: {"description": "no contact has (or had) this external id"}},
)
async def erase(
    external_id: str,
    request: Request,
    reason: Annotated[
        str | None, Query(max_length=500, description="why, e.g. a request number; shown in the ledger")
    ] = None,
) -> ErasureReport | JSONResponse:
    """Erasing twice answers 200 with ``status: already_erased``."""
    try:
        return await facade(request).erase_contact(external_id, reason)
    except UnknownContact as error:
        detail = {"field": error.field, "message": error.message}
        return JSONResponse({"error": error.message, "details": [detail]}, status_code=404)
    except RPCError as error:
        message = (
            f"Temporal did not answer ({error.status.name}: {error.message}); the contact is marked erased "
            "and accepts no more events: send the same DELETE again to finish the erasure"
        )
        return JSONResponse({"error": message, "details": []}, status_code=503)
