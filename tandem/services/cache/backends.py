"""Where cached answers live: a small async protocol and a registry of backends.

`memory`: an in-process LRU with per-entry expiry (one router process; lost on restart).
`redis`: shared by every router replica, expiry by Redis. A backend raises `CacheUnavailable`
when its store fails; the cache in front of it turns that into a bypass and a metric.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tandem.services.cache.settings import CacheSettings


class CacheUnavailable(Exception):
    """The cache store did not answer (down, slow, refused)."""


class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def aclose(self) -> None: ...


BackendFactory = Callable[[CacheSettings], CacheBackend]


def build_backend(settings: CacheSettings) -> CacheBackend:
    name = settings.resolved_backend()
    if name not in BACKENDS:
        raise ValueError(f"unknown cache backend '{name}'; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](settings)


class MemoryBackend:
    def __init__(self, settings: CacheSettings):
        self.capacity = settings.max_entries
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._items[key] = (time.monotonic() + ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    async def delete(self, key: str) -> bool:
        return self._items.pop(key, None) is not None

    async def aclose(self) -> None:
        self._items.clear()


class RedisBackend:
    def __init__(self, settings: CacheSettings):
        if not settings.redis_url:
            raise ValueError("the redis cache backend needs cache.redis_url")
        self.client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_s,
                                              socket_connect_timeout=settings.redis_timeout_s)

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.client.get(key)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis get failed: {type(exc).__name__}: {exc}") from exc

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        try:
            await self.client.set(key, value, ex=ttl_s)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis set failed: {type(exc).__name__}: {exc}") from exc

    async def delete(self, key: str) -> bool:
        try:
            return bool(await self.client.delete(key))
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis delete failed: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self.client.aclose()


# Every backend a config can name, registered here and only here.
BACKENDS: dict[str, BackendFactory] = {"memory": MemoryBackend, "redis": RedisBackend}
