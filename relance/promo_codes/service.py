"""Promo codes as rewards (R-12): from a pool an operator loads, or generated from the reward's key.

Every code given is a row of ``promo_codes`` carrying the reward's key (``reward-<referral id>``):
asking again with the same key returns the same code, so a retried activity or a replayed
referral never gives a second reward. Taking a pool's next code is safe with several workers:
PostgreSQL skips the codes other transactions hold (``FOR UPDATE SKIP LOCKED``), and SQLite
sessions take the write lock when they begin (see ``relance.db``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from relance.models.tables.promo_code import ASSIGNED, AVAILABLE, PromoCode

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
# Loaded pools never contain ':', which keeps the generated:<prefix> ledgers apart.
POOL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9]{1,20}$")
GENERATED = "generated:"
# No 0/O, 1/I/L: codes are read off an email and typed at a checkout.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CHUNK = 500  # below SQLite's bound-parameter limit


class PromoCodeError(ValueError):
    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


class PoolExhausted(PromoCodeError):
    def __init__(self, pool: str) -> None:
        super().__init__(
            "pool",
            f"promo-code pool '{pool}' is empty: load more codes with `relance promo-codes load {pool} FILE` "
            f"(or POST /v1/promo-codes/{pool}); waiting rewards then take them",
            409,
        )
        self.pool = pool


class BadLine(BaseModel):
    line: int = Field(description="line of the file (or 1-based position in the list)")
    code: str
    message: str


class BadCodes(PromoCodeError):
    """Some codes are malformed: none of the batch was loaded."""

    def __init__(self, pool: str, problems: list[BadLine]) -> None:
        super().__init__("codes", f"{len(problems)} bad code(s): nothing was loaded into pool '{pool}'")
        self.pool, self.problems = pool, problems


class LoadReport(BaseModel):
    pool: str
    added: int = Field(description="codes new to the pool")
    duplicates: int = Field(description="codes already in the pool, or repeated in the input: skipped")
    available: int = Field(description="codes of the pool not given yet, after the load")


class PoolStats(BaseModel):
    pool: str
    available: int
    assigned: int


def check_pool(pool: str) -> str:
    if not POOL_PATTERN.fullmatch(pool):
        raise PromoCodeError(
            "pool", f"pool name '{pool}' is invalid: use 1 to 80 letters, digits, '_', '-' or '.'"
        )
    return pool


def check_prefix(prefix: str) -> str:
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise PromoCodeError("prefix", f"prefix '{prefix}' is invalid: use 1 to 20 letters or digits")
    return prefix


def generated_pool(prefix: str) -> str:
    return f"{GENERATED}{check_prefix(prefix)}"


def code_problem(code: str) -> str | None:
    """Why ``code`` cannot be a promo code, or None."""
    if CODE_PATTERN.fullmatch(code):
        return None
    if not 3 <= len(code) <= 64:
        return f"{len(code)} characters: a code has 3 to 64"
    bad = sorted({c for c in code if not re.fullmatch(r"[A-Za-z0-9_-]", c)})
    return f"characters {bad!r} are not allowed: use letters, digits, '_' and '-'"


def _insert(session: AsyncSession) -> Any:
    # A concurrent load of the same codes skips them instead of failing the whole batch.
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(PromoCode).on_conflict_do_nothing(index_elements=["pool", "code"])


async def load_pool(
    session: AsyncSession,
    pool: str,
    codes: Sequence[str],
    *,
    lines: Sequence[int] | None = None,
    now: datetime | None = None,
) -> LoadReport:
    """Add ``codes`` to ``pool``; all or nothing: one malformed code raises ``BadCodes``.

    ``lines`` numbers the codes in error reports (the file's lines); default: 1, 2, 3 …
    """
    check_pool(pool)
    numbers = list(lines) if lines is not None else list(range(1, len(codes) + 1))
    cleaned = [code.strip() for code in codes]
    problems = [
        BadLine(line=number, code=code, message=problem)
        for number, code in zip(numbers, cleaned, strict=True)
        if (problem := code_problem(code)) is not None
    ]
    if problems:
        raise BadCodes(pool, problems)
    unique = list(dict.fromkeys(cleaned))
    known: set[str] = set()
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        known.update(
            await session.scalars(
                select(PromoCode.code).where(PromoCode.pool == pool, PromoCode.code.in_(chunk))
            )
        )
    fresh = [code for code in unique if code not in known]
    at = now or datetime.now(UTC)
    for start in range(0, len(fresh), _CHUNK):
        rows = [
            {"pool": pool, "code": code, "status": AVAILABLE, "created_at": at}
            for code in fresh[start : start + _CHUNK]
        ]
        await session.execute(_insert(session), rows)
    stats = await pool_stats(session, pool)
    return LoadReport(
        pool=pool, added=len(fresh), duplicates=len(cleaned) - len(fresh), available=stats.available
    )


async def pool_stats(session: AsyncSession, pool: str) -> PoolStats:
    rows = await session.execute(
        select(PromoCode.status, func.count()).where(PromoCode.pool == pool).group_by(PromoCode.status)
    )
    counts: dict[str, int] = {status: count for status, count in rows}
    return PoolStats(pool=pool, available=counts.get(AVAILABLE, 0), assigned=counts.get(ASSIGNED, 0))


async def code_for_key(session: AsyncSession, key: str) -> PromoCode | None:
    """The code already given under ``key``, whatever its pool."""
    return await session.scalar(select(PromoCode).where(PromoCode.assigned_key == key))


async def _given_meanwhile(session: AsyncSession, key: str, error: IntegrityError) -> str:
    # Another transaction gave a code under this key and committed first: that one is the reward.
    earlier = await code_for_key(session, key)
    if earlier is None:
        raise error
    return earlier.code


async def assign_code(
    session: AsyncSession, *, pool: str, key: str, contact_id: int | None, now: datetime
) -> str:
    """The code given under ``key``: the one given earlier, else the pool's first available one.

    Raises ``PoolExhausted`` when the pool has no code left (or all are being taken right now).
    """
    earlier = await code_for_key(session, key)
    if earlier is not None:
        return earlier.code
    check_pool(pool)
    row = await session.scalar(
        select(PromoCode)
        .where(PromoCode.pool == pool, PromoCode.status == AVAILABLE)
        .order_by(PromoCode.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if row is None:
        raise PoolExhausted(pool)
    try:
        # A savepoint: losing the race on the key must leave the caller's transaction usable.
        async with session.begin_nested():
            row.status, row.assigned_key, row.contact_id, row.assigned_at = ASSIGNED, key, contact_id, now
    except IntegrityError as error:
        return await _given_meanwhile(session, key, error)
    return row.code


def generate_code(secret: str, key: str, prefix: str) -> str:
    """``PREFIX-XXXX-XXXX`` from an HMAC of ``key``: stable per key, unguessable without the secret."""
    digest = hmac.new(secret.encode(), f"promo-code:{prefix}:{key}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(8):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return f"{check_prefix(prefix).upper()}-{''.join(chars[:4])}-{''.join(chars[4:])}"


async def assign_generated(
    session: AsyncSession, *, key: str, contact_id: int | None, prefix: str, secret: str, now: datetime
) -> str:
    """A generated code for ``key``, recorded in pool ``generated:<prefix>`` so the ledger lists it."""
    earlier = await code_for_key(session, key)
    if earlier is not None:
        return earlier.code
    pool = generated_pool(prefix)
    # 31^8 codes per prefix: two keys may meet on one; the next derivation settles it.
    for attempt in range(8):
        code = generate_code(secret, key if attempt == 0 else f"{key}#{attempt}", prefix)
        try:
            async with session.begin_nested():
                session.add(
                    PromoCode(
                        pool=pool,
                        code=code,
                        status=ASSIGNED,
                        assigned_key=key,
                        contact_id=contact_id,
                        assigned_at=now,
                        created_at=now,
                    )
                )
        except IntegrityError:
            earlier = await code_for_key(session, key)
            if earlier is not None:
                return earlier.code
            continue
        return code
    raise PromoCodeError("prefix", f"could not derive a free code for '{key}' in pool '{pool}'", 500)
