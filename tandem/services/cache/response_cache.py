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

from fastapi.concurrency import run_in_threadpool
from prometheus_client import Counter

from tandem.common.wire import ChatCompletionRequest
from tandem.services.cache.backends import CacheBackend, CacheUnavailable
from tandem.services.cache.keys import context_key, exact_key, prompt_text, semantic_eligible
from tandem.services.cache.semantic import SemanticIndex
from tandem.services.cache.settings import CacheSettings

log = logging.getLogger(__name__)

NAMESPACE_HEADER = "x-tandem-cache-namespace"


@dataclass
class CachePlan:
    """How one request uses the cache: its keys, and whether to look up and to store."""

    key: str
    context: str | None  # None: exact match only (tools, multi-turn)
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
    semantic_hits: Counter | None = None  # labels: domain (of the cached answer's route)
    semantic_refusals: Counter | None = None  # labels: guard (that refused a candidate above the threshold)


class ResponseCache:
    def __init__(self, settings: CacheSettings, backend: CacheBackend, counters: CacheCounters,
                 semantic: SemanticIndex | None = None):
        self.settings = settings
        self.backend = backend
        self.counters = counters
        self.semantic = semantic
        self._down_until = 0.0

    def plan(self, body: ChatCompletionRequest, headers: Any, scope: str = "") -> CachePlan | None:
        """None when this request does not use the cache at all. `scope`: the version of the model (and
        adapter) that answers, part of every key (keys.exact_key)."""
        control = {part.strip().lower() for part in headers.get("cache-control", "").split(",")}
        if not self.settings.enabled or "no-store" in control:
            return None
        if not (body.is_deterministic() or self.settings.include_nondeterministic):
            self.counters.lookups.labels("bypass", "exact").inc()
            return None
        namespace = headers.get(NAMESPACE_HEADER) or self.settings.namespace
        prefix = f"tandem:cache:{namespace}:"
        context = prefix + context_key(body, scope) if semantic_eligible(body) else None
        return CachePlan(key=prefix + exact_key(body, scope), context=context, text=prompt_text(body),
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
            if raw is None and self.semantic is not None and plan.context is not None:
                # Embedding is CPU work: in a thread, so streams relayed on this loop do not stall.
                match = await run_in_threadpool(self.semantic.lookup, plan.context, plan.text)
                self._count_refusals(match.refused_by)
                if match.key is not None:
                    raw = await self.backend.get(match.key)
                    kind, similarity = "semantic", match.similarity
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
        if kind == "semantic" and self.counters.semantic_hits is not None:
            self.counters.semantic_hits.labels(str(hit.route.get("domain", "unknown"))).inc()
        return hit

    def _count_refusals(self, guards: list[str]) -> None:
        if self.counters.semantic_refusals is not None:
            for guard in guards:
                self.counters.semantic_refusals.labels(guard).inc()

    async def evict(self, key: str) -> bool:
        """Drop one entry (an operator's call, admin endpoint): from the store and the semantic index."""
        removed = self.semantic.remove(key) if self.semantic is not None else False
        try:
            return await self.backend.delete(key) or removed
        except CacheUnavailable as exc:
            self._failed("delete", exc)
            raise

    async def put(self, plan: CachePlan, response: dict[str, Any], route: dict[str, Any]) -> None:
        if not plan.store or not self._available():
            return
        value = json.dumps({"response": response, "route": route}, separators=(",", ":")).encode()
        try:
            await self.backend.set(plan.key, value, self.settings.ttl_s)
        except CacheUnavailable as exc:
            self._failed("set", exc)
            return
        if self.semantic is not None and plan.context is not None:
            await run_in_threadpool(self.semantic.add, plan.context, plan.text, plan.key)

    async def aclose(self) -> None:
        await self.backend.aclose()
