"""What every router takes from the running app: the ``Relance`` facade and its database sessions."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from relance.starter.facade import Relance


def relance(request: Request) -> Relance:
    facade: Relance = request.app.state.relance
    return facade


def sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return relance(request).ingestor.sessions
