"""The daily spend cap: the day's spend (UTC) kept in Redis, shared by every fallback replica, or
in-process when no Redis is configured.

Reserve, then settle. Before the upstream call, the request's largest possible cost (its prompt's
UTF-8 bytes as prompt tokens, an upper bound for byte-level BPE tokenizers, plus its `max_tokens` at
the output price) is added to the day's spend in one atomic step that refuses when it would pass the
cap: a Lua script in Redis (so replicas cannot interleave), a check-and-add with no await in between
in-process. After the call the unused part is refunded (the actual cost from the usage comes back).
So concurrent requests cannot overspend: each one's worst case was counted before it was sent. A
call whose cost is unknown (a stream cut before its usage event) keeps its whole reservation.

Fail closed: when Redis cannot say what was spent, the fallback refuses (reason
`budget_unavailable`) rather than spend money it cannot count; the router then serves the local
answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "tandem:fallback:spend:"
KEEP_DAYS_S = 3 * 86_400

# KEYS[1] the day's spend; ARGV: amount, limit, ttl. Returns {1, new total} or {0, spent so far}.
RESERVE_LUA = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return {0, tostring(spent)}
end
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, total}
"""


class BudgetUnavailable(Exception):
    """The spend store did not answer."""


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


@dataclass
class Reservation:
    """Spend counted ahead of a call; `granted` False when it would have passed the cap."""

    day: str
    usd: float
    granted: bool
    total: float  # the day's spend after the reservation (or as it stood, when refused)


class DailyBudget:
    def __init__(self, limit_usd: float, redis_url: str | None, timeout_s: float):
        self.limit_usd = limit_usd
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=timeout_s,
                                              socket_connect_timeout=timeout_s) if redis_url else None
        self._reserve = self._redis.register_script(RESERVE_LUA) if self._redis is not None else None
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

    async def reserve(self, usd: float) -> Reservation:
        """Count `usd` against today's cap, atomically, unless it would pass the cap."""
        day = today()
        if self._redis is None:  # one event loop: nothing runs between the check and the add
            spent = self._local.get(day, 0.0)
            if spent + usd > self.limit_usd:
                return Reservation(day, usd, False, spent)
            self._local[day] = spent + usd
            return Reservation(day, usd, True, self._local[day])
        try:
            granted, total = await self._reserve(keys=[KEY_PREFIX + day], args=[repr(usd), repr(self.limit_usd),
                                                                                  KEEP_DAYS_S])
        except (RedisError, OSError) as exc:
            raise BudgetUnavailable(f"cannot reserve spend in Redis: {type(exc).__name__}") from exc
        return Reservation(day, usd, bool(granted), float(total))

    async def settle(self, reservation: Reservation, actual_usd: float) -> float:
        """Replace a granted reservation by the actual cost; returns the day's total."""
        delta = actual_usd - reservation.usd
        if self._redis is None:
            self._local[reservation.day] = self._local.get(reservation.day, 0.0) + delta
            return self._local[reservation.day]
        try:
            return float(await self._redis.incrbyfloat(KEY_PREFIX + reservation.day, delta))
        except (RedisError, OSError) as exc:
            raise BudgetUnavailable(f"cannot settle spend in Redis: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
