"""The router's memory of its last routing decisions, for the playground's live panel (`GET /v1/recent`).

Decisions are recorded from the `x-tandem-*` headers of each chat response as it starts (a pure ASGI
middleware), so the panel shows exactly what clients were told, streams and cache hits included,
without a hook in the answer path. Memory is bounded: the last `capacity` decisions, plus running
totals since start-up (per process: replicas each keep their own; Prometheus has the fleet's view).
"""

from __future__ import annotations

import time
from collections import Counter, deque

from pydantic import BaseModel, Field, computed_field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHAT_PATH = "/v1/chat/completions"
HIT_KINDS = ("hit", "semantic")


class RecentDecision(BaseModel):
    at: float = Field(description="Unix time the response started.")
    request_id: str
    status: int = Field(description="HTTP status of the response.")
    route: str
    domain: str
    confidence: float
    cache: str = Field(description="hit, semantic, miss or bypass.")
    escalated: bool
    escalation_reason: str = ""
    escalation_refused: str = ""


class DecisionTotals(BaseModel):
    requests: int = 0
    errors: int = Field(0, description="Routed requests answered with an HTTP error (e.g. 503, worker down).")
    escalated: int = 0
    domains: dict[str, int] = Field(default_factory=dict)
    routes: dict[str, int] = Field(default_factory=dict)
    cache: dict[str, int] = Field(default_factory=dict, description="Responses by cache result.")

    @computed_field
    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.requests if self.requests else None

    @computed_field
    @property
    def cache_hit_rate(self) -> float | None:
        """Hits over lookups (hits + misses); bypassed requests (sampled, no-cache) are not lookups."""
        hits = sum(self.cache.get(kind, 0) for kind in HIT_KINDS)
        lookups = hits + self.cache.get("miss", 0)
        return hits / lookups if lookups else None


class RecentResponse(BaseModel):
    object: str = "list"
    capacity: int
    data: list[RecentDecision] = Field(description="Newest first.")
    totals: DecisionTotals


class RecentRoutes:
    def __init__(self, capacity: int = 100):
        self.capacity = capacity
        self._items: deque[RecentDecision] = deque(maxlen=capacity)
        self._domains: Counter[str] = Counter()
        self._routes: Counter[str] = Counter()
        self._cache: Counter[str] = Counter()
        self._requests = self._errors = self._escalated = 0

    def record(self, headers: Headers, status: int) -> None:
        """Remember one response's route facts; responses without them (rejected before routing) are skipped."""
        route = headers.get("x-tandem-route")
        if route is None:
            return
        decision = RecentDecision(
            at=time.time(), request_id=headers.get("x-tandem-request-id", ""), status=status, route=route,
            domain=headers.get("x-tandem-domain", ""), confidence=float(headers.get("x-tandem-confidence", "0")),
            cache=headers.get("x-tandem-cache", ""), escalated=headers.get("x-tandem-escalated") == "true",
            escalation_reason=headers.get("x-tandem-escalation-reason", ""),
            escalation_refused=headers.get("x-tandem-escalation-refused", ""))
        self._items.append(decision)
        self._requests += 1
        self._errors += status >= 400
        self._escalated += decision.escalated
        self._domains[decision.domain] += 1
        self._routes[decision.route] += 1
        self._cache[decision.cache] += 1

    def snapshot(self, limit: int) -> RecentResponse:
        newest = list(self._items)[::-1][:limit]
        totals = DecisionTotals(requests=self._requests, errors=self._errors, escalated=self._escalated,
                                domains=dict(self._domains), routes=dict(self._routes), cache=dict(self._cache))
        return RecentResponse(capacity=self.capacity, data=newest, totals=totals)


class RecentRoutesMiddleware:
    """Records the route facts of every chat response into `decisions` when its headers are sent."""

    def __init__(self, app: ASGIApp, decisions: RecentRoutes):
        self.app = app
        self.decisions = decisions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.decisions.record(Headers(raw=message["headers"]), message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)
