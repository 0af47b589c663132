"""Rewards given to sponsors besides e-gift cards: promo codes (R-12)."""

from relance.rewards.promo_codes import (
    BadCodes,
    BadLine,
    LoadReport,
    PoolExhausted,
    PoolStats,
    PromoCodeError,
    assign_code,
    assign_generated,
    generate_code,
    load_pool,
    pool_stats,
)

__all__ = [
    "BadCodes",
    "BadLine",
    "LoadReport",
    "PoolExhausted",
    "PoolStats",
    "PromoCodeError",
    "assign_code",
    "assign_generated",
    "generate_code",
    "load_pool",
    "pool_stats",
]
