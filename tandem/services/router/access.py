"""Authentication (bearer keys) and a per-caller moving-window rate limit, as one dependency.

- Keys are compared in constant time (`hmac.compare_digest` against every key), so response
  timing does not reveal how much of a guess was right.
- The limit is keyed on the caller's validated key, or on its address when auth is off: an
  unvalidated bearer string would let a client escape the limit by sending a new one each time.
  Keys are hashed before they become limiter keys, so no secret is held in Redis.
- The counting is the `limits` library's moving window: in process memory (which drops idle
  callers' entries as they expire), or in Redis (atomic Lua scripts) so that every router replica
  shares one count. When Redis does not answer, each replica falls back to its own count rather
  than letting everyone through.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from fastapi import Request
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from tandem.common.errors import AuthenticationError, RateLimitError
from tandem.services.router.settings import RouterSettings

log = logging.getLogger(__name__)
NAMESPACE = "tandem-ratelimit"


def _key_id(key: bytes) -> str:
    return "key:" + hashlib.sha256(key).hexdigest()[:24]


class AccessControl:
    def __init__(self, settings: RouterSettings):
        self._keys = [k.get_secret_value().encode() for k in settings.accepted_api_keys()]
        limit = settings.rate_limit_per_minute
        self._item = RateLimitItemPerMinute(limit, namespace=NAMESPACE) if limit else None
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = None
        if limit and settings.rate_limit_redis_url:
            timeout = settings.rate_limit_redis_timeout_s
            storage = RedisStorage(f"async+{settings.rate_limit_redis_url}", implementation="redispy",
                                   wrap_exceptions=True, key_prefix="tandem", socket_timeout=timeout,
                                   socket_connect_timeout=timeout)
            self._shared = MovingWindowRateLimiter(storage)

    def identify(self, request: Request) -> str:
        """The validated key's id, or the client's address when no keys are configured."""
        if not self._keys:
            return "addr:" + (request.client.host if request.client else "unknown")
        auth = request.headers.get("authorization", "")
        presented = (auth[7:].strip() if auth[:7].lower() == "bearer " else "").encode()
        matched = False
        for key in self._keys:  # every key, every time: no early exit to time
            matched |= hmac.compare_digest(presented, key)
        if not matched:
            raise AuthenticationError("Missing or invalid API key: pass it as 'Authorization: Bearer <key>'.")
        return _key_id(presented)

    async def __call__(self, request: Request) -> str:
        caller = self.identify(request)
        if self._item is not None and not await self._hit(caller):
            retry = await self._retry_after(caller)
            raise RateLimitError(f"Rate limit of {self._item.amount} requests per minute reached; retry in "
                                 f"{retry}s.", headers={"Retry-After": str(retry)})
        return caller

    async def _hit(self, caller: str) -> bool:
        if self._shared is not None:
            try:
                return await self._shared.hit(self._item, caller)
            except StorageError as exc:
                log.warning("rate-limit Redis unavailable (%s); counting in this process", type(exc.storage_error).__name__)
        return await self._local.hit(self._item, caller)

    async def _retry_after(self, caller: str) -> int:
        limiter = self._shared or self._local
        try:
            stats = await limiter.get_window_stats(self._item, caller)
        except StorageError:
            stats = await self._local.get_window_stats(self._item, caller)
        return max(1, int(stats.reset_time - time.time()) + 1)
