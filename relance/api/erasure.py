"""``DELETE /v1/contacts/{external_id}``: erase a contact (GDPR), see relance.contacts.erasure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from relance.contacts.erasure import ErasureReport, UnknownContact
from relance.starter.facade import Relance

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])


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
    relance: Relance = request.app.state.relance
    try:
        return await relance.erase_contact(external_id, reason)
    except UnknownContact as error:
        detail = {"field": error.field, "message": error.message}
        return JSONResponse({"error": error.message, "details": [detail]}, status_code=404)
    except RPCError as error:
        message = (
            f"Temporal did not answer ({error.status.name}: {error.message}); the contact is marked erased "
            "and accepts no more events: send the same DELETE again to finish the erasure"
        )
        return JSONResponse({"error": message, "details": []}, status_code=503)
