"""``POST /v1/contacts/import``: CSV import over HTTP (same rules as ``relance contacts import``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])
