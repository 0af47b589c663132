"""Reward activities: promo codes (R-12). One code per key, whatever the retries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from relance.models.promo_code import PromoCodeRequest, PromoCodeResult
from relance.models.tables.contact import Contact
from relance.promo_codes.service import (
    PoolExhausted,
    PromoCodeError,
    assign_code,
    assign_generated,
    code_for_key,
)

POOL_EXHAUSTED = "PoolExhausted"  # the ApplicationError type; retried, never in non_retryable_error_types


@dataclass
class RewardActivities:
    sessions: async_sessionmaker[AsyncSession]
    secret: str = ""  # derives generated codes; the worker passes settings.resolved_secret_key()

    @activity.defn(name="assign_promo_code")
    async def assign_promo_code(self, request: PromoCodeRequest) -> PromoCodeResult:
        try:
            async with self.sessions() as session, session.begin():
                contact_id = await session.scalar(
                    select(Contact.id).where(Contact.external_id == request.contact)
                )
                if contact_id is None:
                    raise ApplicationError(f"no contact '{request.contact}'", non_retryable=True)
                now = datetime.now(UTC)
                if request.mode == "generated":
                    assert request.prefix is not None  # the request's validator requires it
                    code = await assign_generated(
                        session,
                        key=request.key,
                        contact_id=contact_id,
                        prefix=request.prefix,
                        secret=self.secret,
                        now=now,
                    )
                else:
                    assert request.pool is not None
                    code = await assign_code(
                        session, pool=request.pool, key=request.key, contact_id=contact_id, now=now
                    )
                # An earlier attempt may have given the code from another pool: report where it is from.
                given = await code_for_key(session, request.key)
                assert given is not None and given.code == code
        except PoolExhausted as error:
            # Retried on the workflow's retry policy: the reward waits until an operator loads codes.
            structlog.get_logger("relance.rewards").warning(
                "promo_code_pool_exhausted",
                pool=error.pool,
                key=request.key,
                attempt=activity.info().attempt,
                action=f"relance promo-codes load {error.pool} FILE",
            )
            raise ApplicationError(error.message, type=POOL_EXHAUSTED) from None
        except PromoCodeError as error:
            raise ApplicationError(
                f"{error.field}: {error.message}", type="PromoCodeError", non_retryable=True
            ) from None
        return PromoCodeResult(key=request.key, contact=request.contact, pool=given.pool, code=code)
