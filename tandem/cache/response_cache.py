"""The router's response cache: exact (and optionally semantic) lookup before routing, store after.

Fail-open by design: a cache that errors or times out is bypassed and counted
(`tandem_cache_errors_total`), never turned into a failed request; after an error the store is
left alone for `retry_after_s`, so a dead Redis costs one short timeout, not one per request.

`Cache-Control: no-cache` skips the lookup (the fresh answer is still stored); `no-store`
skips both. Only deterministic requests (temperature 0 or a seed) are cached unless
`include_nondeterministic` is set.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from tandem.cache.backends import CacheBackend, CacheUnavailable
from tandem.cache.keys import context_key, exact_key, prompt_text
from tandem.cache.semantic import SemanticIndex
from tandem.cache.settings import CacheSettings
from tandem.common.wire import ChatCompletionRequest

log = logging.getLogger(__name__)

NAMESPACE_HEADER = "x-tandem-cache-namespace"


@dataclass
class CachePlan:
    """How one request uses the cache: its keys, and whether to look up and to store."""

    key: str
    context: str
    text: str
    lookup: bool
    store: bool


@dataclass
class CachedAnswer:
    response: dict[str, Any]
    route: dict[str, Any]
    kind: str  # "exact" | "semantic"
    similarity: float = 1.0


@dataclass
class CacheCounters:
    lookups: Counter  # labels: result (hit, miss, bypass, error), kind (exact, semantic)
    errors: Counter  # labels: op (get, set)


class ResponseCache:
    def __init__(self, settings: CacheSettings, backend: CacheBackend, counters: CacheCounters,
                 semantic: SemanticIndex | None = None):
        self.settings = settings
        self.backend = backend
        self.counters = counters
        self.semantic = semantic
        self._down_until = 0.0

    def plan(self, body: ChatCompletionRequest, headers: Any) -> CachePlan | None:
        """None when this request does not use the cache at all."""
        control = {part.strip().lower() for part in headers.get("cache-control", "").split(",")}
        if not self.settings.enabled or "no-store" in control:
            return None
        if not (body.is_deterministic() or self.settings.include_nondeterministic):
            self.counters.lookups.labels("bypass", "exact").inc()
            return None
        namespace = headers.get(NAMESPACE_HEADER) or self.settings.namespace
        prefix = f"tandem:cache:{namespace}:"
        return CachePlan(key=prefix + exact_key(body), context=prefix + context_key(body), text=prompt_text(body),
                         lookup="no-cache" not in control, store=True)

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, op: str, exc: CacheUnavailable) -> None:
        if self._available():
            log.warning("cache %s failed, bypassing the cache for %.1fs: %s", op, self.settings.retry_after_s, exc)
        self._down_until = time.monotonic() + self.settings.retry_after_s
        self.counters.errors.labels(op).inc()

    async def get(self, plan: CachePlan) -> CachedAnswer | None:
        if not plan.lookup:
            self.counters.lookups.labels("bypass", "exact").inc()
            return None
        if not self._available():
            self.counters.lookups.labels("error", "exact").inc()
            return None
        try:
            raw = await self.backend.get(plan.key)
            kind, similarity = "exact", 1.0
            if raw is None and self.semantic is not None:
                match = self.semantic.nearest(plan.context, plan.text)
                if match is not None:
                    raw = await self.backend.get(match[0])
                    kind, similarity = "semantic", match[1]
        except CacheUnavailable as exc:
            self._failed("get", exc)
            self.counters.lookups.labels("error", "exact").inc()
            return None
        if raw is None:
            self.counters.lookups.labels("miss", "exact").inc()
            return None
        try:
            stored = json.loads(raw)
            hit = CachedAnswer(response=dict(stored["response"]), route=dict(stored["route"]), kind=kind,
                               similarity=similarity)
        except (ValueError, KeyError, TypeError) as exc:  # corrupt or foreign entry: a miss, not a failure
            log.warning("cache entry %s is unreadable (%s); answering as a miss", plan.key, type(exc).__name__)
            self.counters.errors.labels("decode").inc()
            self.counters.lookups.labels("error", kind).inc()
            return None
        self.counters.lookups.labels("hit", kind).inc()
        return hit

    async def put(self, plan: CachePlan, response: dict[str, Any], route: dict[str, Any]) -> None:
        if not plan.store or not self._available():
            return
        value = json.dumps({"response": response, "route": route}, separators=(",", ":")).encode()
        try:
            await self.backend.set(plan.key, value, self.settings.ttl_s)
        except CacheUnavailable as exc:
            self._failed("set", exc)
            return
        if self.semantic is not None:
            self.semantic.add(plan.context, plan.text, plan.key)

    async def aclose(self) -> None:
        await self.backend.aclose()
