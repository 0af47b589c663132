"""``/v1/experiments``: how the versions of a message and its control group did (A-04)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query, Request

from relance.reports.experiments import ExperimentReport, experiment_report

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.get(
    "/{scenario}/{journey}/{message}",
    response_model=ExperimentReport,
    summary="Each group of a message's A/B test against its control",
)
async def show(
    scenario: str,
    journey: str,
    message: str,
    request: Request,
    window_days: int = Query(7, ge=1, le=365, description="a purchase this many days after counts"),
) -> ExperimentReport:
    async with request.app.state.relance.ingestor.sessions() as session:
        return await experiment_report(session, scenario, journey, message, timedelta(days=window_days))
