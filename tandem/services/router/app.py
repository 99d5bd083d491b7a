"""Router app factory: the public gateway in front of the workers.

Request path (DESIGN.md): auth and limits -> cache lookup (a hit costs no routing) -> route
(explicit model, a fallback model, or the domain router for `auto`) -> escalation policies and
generation (answering.py) -> store in the cache -> route facts in `x-tandem-*` headers (and a
`tandem` field in JSON bodies).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tandem.cache.backends import build_backend
from tandem.cache.embedders import build_embedder
from tandem.cache.response_cache import CacheCounters, ResponseCache
from tandem.cache.semantic import SemanticIndex
from tandem.common.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    error_body,
)
from tandem.common.metrics import ServiceMetrics
from tandem.common.service_app import service_app
from tandem.common.wire import ChatCompletionRequest, ModelCard, ModelList
from tandem.escalation.gateway import EscalationCounters, EscalationGate
from tandem.routing.base import DomainRouter, RouteDecision, build_router
from tandem.services.router.access import AccessControl
from tandem.services.router.answering import answer, cached_response
from tandem.services.router.feedback import FeedbackRequest, FeedbackResponse, RecentDecisions
from tandem.services.router.route_facts import RouteFacts
from tandem.services.router.router_metrics import RouterMetrics
from tandem.services.router.settings import RouterSettings
from tandem.services.router.workers import WorkerPool

log = logging.getLogger(__name__)

AUTO_MODEL = "auto"


class RouterState:
    def __init__(self, settings: RouterSettings, pool: WorkerPool, domain_router: DomainRouter,
                 metrics: ServiceMetrics, router_metrics: RouterMetrics, cache: ResponseCache | None,
                 gate: EscalationGate):
        self.settings = settings
        self.pool = pool
        self.domain_router = domain_router
        self.metrics = metrics
        self.router_metrics = router_metrics
        self.cache = cache
        self.gate = gate
        self.recent = RecentDecisions()

    def public_models(self) -> list[str]:
        return [AUTO_MODEL, *self.pool.models, *self.gate.models]

    def configured_models(self) -> set[str]:
        """Models this deployment is configured to serve, whether or not a worker is up now."""
        return {self.settings.base_model_name, *self.pool.models}

    def model_for_domain(self, domain: str) -> str:
        """The modifier for `domain` when a worker serves it, else the base."""
        candidate = f"tandem-{domain}"
        if domain != self.settings.general_domain and self.pool.worker_for(candidate):
            return candidate
        return self.settings.base_model_name

    def decide(self, body: ChatCompletionRequest) -> tuple[RouteFacts, RouteDecision | None]:
        if body.model == AUTO_MODEL:
            decision = self.domain_router.route(body)
            target = self.model_for_domain(decision.domain)
            self.router_metrics.decisions.labels(decision.domain, target).inc()
            self.router_metrics.confidence.labels(decision.domain).observe(decision.confidence)
            return RouteFacts(route=target, domain=decision.domain, confidence=decision.confidence,
                              reason=decision.reason), decision
        if body.model in self.gate.models:
            return RouteFacts(route=body.model, domain=self.settings.general_domain, confidence=1.0,
                              reason="explicit model", escalated=True), None
        if self.pool.worker_for(body.model) is None:
            if body.model in self.configured_models():
                raise OverloadedError(f"No worker serving '{body.model}' is available right now.",
                                      headers={"Retry-After": "2"})
            known = ", ".join(self.public_models())
            raise ModelNotFoundError(f"The model '{body.model}' does not exist. Available models: {known}.",
                                     param="model")
        domain = body.model.removeprefix("tandem-") if body.model != self.settings.base_model_name else \
            self.settings.general_domain
        return RouteFacts(route=body.model, domain=domain, confidence=1.0, reason="explicit model"), None


async def get_state(request: Request) -> RouterState:
    # async: FastAPI runs sync dependencies in a thread pool, a hop that costs milliseconds per request
    # on a busy machine (it dominated the cache-hit latency, bench/cache).
    return request.app.state.router


StateDep = Annotated[RouterState, Depends(get_state)]


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()
    metrics = ServiceMetrics(settings.service_name)
    router_metrics = RouterMetrics(metrics)
    access_control = AccessControl(settings)

    async def access(request: Request) -> str:
        return access_control(request)  # non-blocking: run it on the event loop, not in the thread pool

    # Built here, not in lifespan, so a missing or corrupt router artifact fails at start-up.
    domain_router = build_router(settings.domain_router, artifacts_dir=settings.artifacts_dir,
                                 domains=settings.domains, default_domain=settings.general_domain)
    semantic = None
    if settings.cache.semantic.enabled:
        semantic = SemanticIndex(build_embedder(settings.cache.semantic.embedder, settings.artifacts_dir),
                                 settings.cache.semantic.threshold, settings.cache.semantic.max_entries)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = WorkerPool(settings)
        await pool.refresh()
        cache = ResponseCache(settings.cache, build_backend(settings.cache),
                              CacheCounters(router_metrics.cache_lookups, router_metrics.cache_errors),
                              semantic) if settings.cache.enabled else None
        gate = EscalationGate(settings.escalation, settings.artifacts_dir,
                              EscalationCounters(router_metrics.escalations, router_metrics.escalation_refusals))
        await gate.refresh()
        app.state.router = RouterState(settings, pool, domain_router, metrics, router_metrics, cache, gate)
        refreshers = [asyncio.create_task(pool.refresh_forever())]
        if gate.enabled:
            refreshers.append(asyncio.create_task(gate.refresh_forever()))
        try:
            yield
        finally:
            for task in refreshers:
                task.cancel()
            await pool.aclose()
            await gate.aclose()
            if cache is not None:
                await cache.aclose()

    app = service_app("Tandem router", lifespan, metrics)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse(error_body(f"Request body is {length} bytes; the limit is {settings.max_body_bytes}.",
                                           "invalid_request_error", None, "request_too_large"), status_code=413)
        return await call_next(request)

    @app.get("/ready")
    def ready(request: Request) -> JSONResponse:
        state: RouterState | None = getattr(request.app.state, "router", None)
        # Ready once every worker answers (as documented), not just the base: a client must not
        # see `tandem-code` missing because the modifier worker is still loading its adapters.
        if state is None or settings.base_model_name not in state.pool.models or not all(state.pool.up.values()):
            return JSONResponse({"status": "waiting for workers",
                                 "workers": state.pool.up if state else {}}, status_code=503)
        for name, up in state.pool.up.items():
            router_metrics.worker_up.labels(name).set(1 if up else 0)
        return JSONResponse({"status": "ready", "workers": state.pool.up, "models": state.public_models(),
                             "pid": os.getpid()})

    @app.get("/v1/models", dependencies=[Depends(access)])
    def models(state: StateDep) -> ModelList:
        return ModelList(data=[ModelCard(id=m) for m in state.public_models()])

    @app.post("/v1/route", dependencies=[Depends(access)])
    def route(body: ChatCompletionRequest, state: StateDep) -> dict:
        """The routing decision for a request, without generating."""
        decision = state.domain_router.route(body)
        verdict = state.gate.before(body, decision)
        return {**decision.model_dump(), "target": state.model_for_domain(decision.domain),
                "escalate": verdict is not None, "escalation_reason": verdict.policy if verdict else None}

    @app.post("/v1/feedback", dependencies=[Depends(access)])
    def feedback(body: FeedbackRequest, state: StateDep) -> FeedbackResponse:
        remembered = state.recent.get(body.request_id)
        if remembered is None:
            raise InvalidRequestError(f"No recent request with id '{body.request_id}' (ids come from the "
                                      "x-tandem-request-id header).", param="request_id", code="unknown_request")
        predicted, route_name = remembered
        correct = None
        if body.correct_domain is not None:
            if body.correct_domain not in settings.domains:
                raise InvalidRequestError(f"Unknown domain '{body.correct_domain}'; domains: {settings.domains}",
                                          param="correct_domain")
            correct = predicted == body.correct_domain
            router_metrics.feedback.labels(predicted, body.correct_domain, str(correct).lower()).inc()
        if body.rating is not None:
            router_metrics.ratings.labels(route_name, str(body.rating)).inc()
        return FeedbackResponse(request_id=body.request_id, predicted_domain=predicted, correct=correct)

    @app.post("/v1/chat/completions", dependencies=[Depends(access)])
    async def chat_completions(body: ChatCompletionRequest, request: Request, state: StateDep) -> Response:
        started = time.perf_counter()
        request_id = f"req-{uuid.uuid4().hex[:20]}"
        plan = state.cache.plan(body, request.headers) if state.cache is not None else None
        if plan is not None:
            hit = await state.cache.get(plan)
            if hit is not None:
                return cached_response(hit, body, request_id, state, started)
        facts, decision = state.decide(body)
        facts.request_id = request_id
        facts.cache = "miss" if plan is not None and plan.lookup else "bypass"
        state.recent.remember(facts.request_id, facts.domain, facts.route)
        return await answer(body, facts, decision, plan, state, started)

    return app

