"""Feedback on routed requests: one of the two live routing-accuracy signals (the canary is the other).

The router remembers the domain and route it chose for each request id. `POST /v1/feedback` naming
the correct domain counts once as correct or wrong in `tandem_routing_feedback`, a rating once in
`tandem_feedback_ratings`: a repeat for the same request id and kind is refused with 409, so
retried or replayed feedback cannot inflate the accuracy.

With a Redis URL (`feedback.redis_url`, else the cache's) decisions and the once-only claims live
in Redis, so feedback sent to any replica finds the request another replica answered, and a claim
made on one replica holds on all. Decisions are kept in process too: the Redis write is not
awaited on the chat path (it costs the client nothing), and a Redis outage degrades to
per-process memory, logged, rather than failing chat requests or feedback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis.exceptions import RedisError

from tandem.common.errors import InvalidRequestError, NotFoundError, TandemError
from tandem.common.recipe_config import RecipeModel
from tandem.common.wire import json_int

log = logging.getLogger(__name__)

KINDS = ("domain", "rating")


class FeedbackSettings(RecipeModel):
    redis_url: str | None = Field(None, description="Redis shared by the router replicas for decisions and "
                                  "feedback claims; empty: the cache's redis_url, else in-process only.")
    ttl_s: int = Field(86_400, ge=60, description="How long a request can receive feedback.")
    capacity: int = Field(10_000, ge=1, description="Decisions kept in process (LRU).")
    redis_timeout_s: float = Field(0.25, gt=0, description="Socket timeout of Redis calls.")


class FeedbackRequest(BaseModel):
    # The schema states the rule `_check` enforces (one of the two, not null), so that the OpenAPI
    # document does not offer a body the server refuses.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["correct_domain"], "properties": {"correct_domain": {"type": "string"}}},
        {"required": ["rating"], "properties": {"rating": {"type": "integer"}}}]})

    request_id: str = Field(min_length=1, max_length=64)
    correct_domain: str | None = None
    rating: json_int(ge=-1, le=5) | None = Field(default=None, description="-1/1 thumbs, or 1..5 stars.")

    @model_validator(mode="after")
    def _check(self) -> FeedbackRequest:
        if self.correct_domain is None and self.rating is None:
            raise ValueError("give correct_domain, rating or both")
        return self


class FeedbackResponse(BaseModel):
    request_id: str
    predicted_domain: str | None
    correct: bool | None
    counted: list[str] = Field(description="What this call counted (domain, rating); a kind already counted "
                               "for this request id is not counted again.")


class FeedbackAlreadyCountedError(TandemError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "feedback_already_counted"


class DecisionLedger:
    """Routing decisions by request id, and once-only feedback claims; Redis-backed when given a URL."""

    def __init__(self, settings: FeedbackSettings, redis_url: str | None):
        self.settings = settings
        self._decisions: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._claims: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._redis = aioredis.from_url(redis_url, socket_timeout=settings.redis_timeout_s,
                                        socket_connect_timeout=settings.redis_timeout_s) if redis_url else None
        self._writes: set[asyncio.Task] = set()

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def remember(self, request_id: str, domain: str, route: str) -> None:
        self._keep(self._decisions, request_id, (domain, route))
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._store(request_id, domain, route))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _store(self, request_id: str, domain: str, route: str) -> None:
        try:
            await self._redis.hset(_decision_key(request_id), mapping={"domain": domain, "route": route})
            await self._redis.expire(_decision_key(request_id), self.settings.ttl_s)
        except RedisError as exc:
            log.warning("decision %s kept in this process only (Redis: %s)", request_id, exc)

    async def lookup(self, request_id: str) -> tuple[str, str] | None:
        """(domain, route) chosen for the request, by this replica or, through Redis, another one."""
        local = self._decisions.get(request_id)
        if local is not None or self._redis is None:
            return local
        try:
            stored = await self._redis.hgetall(_decision_key(request_id))
        except RedisError as exc:
            log.warning("decision lookup for %s in this process only (Redis: %s)", request_id, exc)
            return None
        if not stored:
            return None
        return stored[b"domain"].decode(), stored[b"route"].decode()

    async def claim(self, request_id: str, kind: str) -> bool:
        """True the first time feedback of `kind` arrives for `request_id`, on any replica."""
        if self._redis is not None:
            try:
                return bool(await self._redis.set(f"tandem:feedback:{request_id}:{kind}", b"1", nx=True,
                                                  ex=self.settings.ttl_s))
            except RedisError as exc:
                log.warning("feedback claim for %s checked in this process only (Redis: %s)", request_id, exc)
        if (request_id, kind) in self._claims:
            return False
        self._keep(self._claims, (request_id, kind), None)
        return True

    def _keep(self, items: OrderedDict, key, value) -> None:
        items[key] = value
        items.move_to_end(key)
        while len(items) > self.settings.capacity:
            items.popitem(last=False)

    async def aclose(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()


def _decision_key(request_id: str) -> str:
    return f"tandem:decision:{request_id}"


async def record_feedback(body: FeedbackRequest, ledger: DecisionLedger, domains: list[str],
                          router_metrics) -> FeedbackResponse:
    """Count one feedback call: each kind (domain, rating) at most once per request id."""
    if body.correct_domain is not None and body.correct_domain not in domains:
        raise InvalidRequestError(f"Unknown domain '{body.correct_domain}'; domains: {domains}",
                                  param="correct_domain")
    remembered = await ledger.lookup(body.request_id)
    if remembered is None:
        raise NotFoundError(f"No recent request with id '{body.request_id}' (ids come from the "
                            "x-tandem-request-id header).", param="request_id", code="unknown_request")
    predicted, route = remembered
    correct = None if body.correct_domain is None else predicted == body.correct_domain
    asked = [kind for kind, value in zip(KINDS, (body.correct_domain, body.rating)) if value is not None]
    counted = [kind for kind in asked if await ledger.claim(body.request_id, kind)]
    if not counted:
        raise FeedbackAlreadyCountedError(f"Feedback ({', '.join(asked)}) for request '{body.request_id}' was "
                                          "already counted; each kind counts once per request.",
                                          param="request_id")
    if "domain" in counted:
        router_metrics.feedback.labels(predicted, body.correct_domain, str(correct).lower()).inc()
    if "rating" in counted:
        router_metrics.ratings.labels(route, str(body.rating)).inc()
    return FeedbackResponse(request_id=body.request_id, predicted_domain=predicted, correct=correct,
                            counted=counted)
