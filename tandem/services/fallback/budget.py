"""The daily spend cap: the day's spend (UTC) kept in Redis, shared by every fallback replica, or
in-process when no Redis is configured.

Fail closed: when Redis cannot say what was spent, the fallback refuses (reason
`budget_unavailable`) rather than spend money it cannot count; the router then serves the local
answer.
"""

from __future__ import annotations

import datetime as dt

import redis.asyncio as aioredis
from redis.exceptions import RedisError

KEY_PREFIX = "tandem:fallback:spend:"
KEEP_DAYS_S = 3 * 86_400


class BudgetUnavailable(Exception):
    """The spend store did not answer."""


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


class DailyBudget:
    def __init__(self, limit_usd: float, redis_url: str | None, timeout_s: float):
        self.limit_usd = limit_usd
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=timeout_s,
                                              socket_connect_timeout=timeout_s) if redis_url else None
        self._local: dict[str, float] = {}

    async def spent(self) -> float:
        day = today()
        if self._redis is None:
            return self._local.get(day, 0.0)
        try:
            value = await self._redis.get(KEY_PREFIX + day)
        except (RedisError, OSError) as exc:
            raise BudgetUnavailable(f"cannot read the day's spend from Redis: {type(exc).__name__}") from exc
        return float(value or 0.0)

    async def remaining(self) -> float:
        return self.limit_usd - await self.spent()

    async def add(self, usd: float) -> float:
        """Record spend; returns the day's total."""
        day = today()
        if self._redis is None:
            self._local[day] = self._local.get(day, 0.0) + usd
            return self._local[day]
        try:
            total = await self._redis.incrbyfloat(KEY_PREFIX + day, usd)
            await self._redis.expire(KEY_PREFIX + day, KEEP_DAYS_S)
        except (RedisError, OSError) as exc:
            raise BudgetUnavailable(f"cannot record spend in Redis: {type(exc).__name__}") from exc
        return float(total)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
