"""``/v1/segments``: count, show and snapshot dynamic segments; default filters."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/segments", tags=["segments"])
