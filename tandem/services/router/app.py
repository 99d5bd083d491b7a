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
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from tandem.common.errors import (
    ModelNotFoundError,
)
from tandem.common.internal_auth import InternalAuthSettings
from tandem.common.legacy_wire import CompletionRequest
from tandem.common.metrics import ServiceMetrics
from tandem.common.service_app import service_app
from tandem.common.wire import ChatCompletionRequest, ModelCard, ModelList
from tandem.services.cache.admin import cache_admin_router
from tandem.services.cache.backends import build_backend
from tandem.services.cache.response_cache import CacheCounters, ResponseCache
from tandem.services.cache.semantic import build_semantic_index, semantic_counters
from tandem.services.escalation.gateway import EscalationCounters, EscalationGate
from tandem.services.router.access import AccessControl
from tandem.services.router.answering import answer, cached_response
from tandem.services.router.canary import CanaryMetrics, RoutingCanary, load_probes
from tandem.services.router.completions import chat_view, legacy_completion
from tandem.services.router.feedback import DecisionLedger, FeedbackRequest, FeedbackResponse, record_feedback
from tandem.services.router.judge import JudgeMetrics, RoutingJudge
from tandem.services.router.limits import RequestLimits
from tandem.services.router.openapi import install_openapi
from tandem.services.router.playground import mount_playground
from tandem.services.router.reload import DomainRouterReloader, reload_router
from tandem.services.router.router_metrics import RouterMetrics
from tandem.services.router.settings import RouterSettings
from tandem.services.router.state import AUTO_MODEL, RouterState
from tandem.services.router.tool_guard import ToolFitGuard
from tandem.services.router.traffic_log import TrafficLog, TrafficMetrics
from tandem.services.router.workers import WorkerPool
from tandem.services.routing.onnx_router import artifact_version
from tandem.services.routing.registry import build_router

log = logging.getLogger(__name__)

async def get_state(request: Request) -> RouterState:
    # async: FastAPI runs sync dependencies in a thread pool, a hop that costs milliseconds per request
    # on a busy machine (it dominated the cache-hit latency, bench/cache).
    return request.app.state.router


StateDep = Annotated[RouterState, Depends(get_state)]


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()
    metrics = ServiceMetrics(settings.service_name)
    router_metrics = RouterMetrics(metrics)
    router_metrics.initialize_domains(settings.domains)
    access_control = AccessControl(settings)
    limits = RequestLimits(settings.max_waiting_requests, settings.request_deadline_s, metrics)

    async def access(request: Request) -> str:
        return await access_control(request)  # async: on the event loop, not in the thread pool

    # Built here, not in lifespan, so a missing or corrupt router artifact fails at start-up.
    domain_router = build_router(settings.domain_router, artifacts_dir=settings.artifacts_dir,
                                 domains=settings.domains, default_domain=settings.general_domain)
    canary, canary_metrics = None, CanaryMetrics(metrics.registry)
    if settings.canary.enabled:
        probes = load_probes(settings.artifacts_dir, settings.canary.router_entry, settings.domains,
                             settings.canary.max_probes_per_domain)
        canary = RoutingCanary(domain_router, probes, settings.domains, canary_metrics) if probes else None
        log.info("routing canary: %s", f"{len(probes)} probes every {settings.canary.interval_s:.0f}s" if probes
                 else "off (the router artifact ships no probes.jsonl)")
    judge_metrics = JudgeMetrics(metrics.registry)
    traffic_metrics = TrafficMetrics(metrics.registry)
    if settings.judge.enabled:
        judge_metrics.initialize(settings.domains)
    semantic = build_semantic_index(settings.cache.semantic, settings.artifacts_dir) \
        if settings.cache.semantic.enabled else None
    cache_counters = CacheCounters(router_metrics.cache_lookups, router_metrics.cache_errors,
                                   **semantic_counters(metrics.registry))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = WorkerPool(settings, router_metrics.worker_up)
        await pool.refresh()
        cache = ResponseCache(settings.cache, build_backend(settings.cache),
                              cache_counters, semantic) if settings.cache.enabled else None
        gate = EscalationGate(settings.escalation, settings.artifacts_dir,
                              EscalationCounters(router_metrics.escalations, router_metrics.escalation_refusals))
        await gate.refresh()
        recent = DecisionLedger(settings.feedback, settings.feedback.redis_url or settings.cache.redis_url)
        judge = RoutingJudge(settings.judge, settings.domains, judge_metrics, lambda: gate.client,
                             settings.judge.redis_url or settings.feedback.redis_url or settings.cache.redis_url) \
            if settings.judge.enabled else None
        if judge is not None:
            log.info("judge sampling: %.3g of answered auto requests to '%s', at most %d/min", settings.judge.sample_rate,
                     settings.judge.model, settings.judge.max_per_minute)
            if gate.models and settings.judge.model not in gate.models:
                log.warning("judge model '%s' is not among the fallback's models %s: judgements will fail (counted "
                            "as error)", settings.judge.model, gate.models)
        # Built here, at start-up: an unwritable traffic_log.dir fails the start, not the first sample.
        traffic = TrafficLog(settings.traffic_log, traffic_metrics) if settings.traffic_log.enabled else None
        if traffic is not None:
            log.info("traffic log: %.3g of answered chat requests to %s (redacting %s)",
                     settings.traffic_log.sample_rate, traffic.dir, ", ".join(traffic.redactor.kinds) or "nothing")
        app.state.router = RouterState(settings, pool, domain_router, metrics, router_metrics, cache, gate, recent,
                                       judge, traffic, ToolFitGuard.from_artifacts(settings.artifacts_dir))
        refreshers = [asyncio.create_task(pool.refresh_forever())]
        if gate.enabled:
            refreshers.append(asyncio.create_task(gate.refresh_forever()))
        if canary is not None:
            refreshers.append(asyncio.create_task(canary.run_forever(settings.canary.interval_s)))
        try:
            yield
        finally:
            for task in refreshers:
                task.cancel()
            if judge is not None:
                await judge.aclose()
            if traffic is not None:
                await asyncio.to_thread(traffic.close)
            await pool.aclose()
            await gate.aclose()
            await recent.aclose()
            if cache is not None:
                await cache.aclose()

    app = service_app("Tandem router", lifespan, metrics, max_body_bytes=settings.max_body_bytes, internal=False)
    install_openapi(app, settings.domains)
    app.include_router(cache_admin_router(InternalAuthSettings().token,
                                          lambda request: request.app.state.router.cache))
    def swap_domain_router(new) -> None:  # one assignment each: a request in flight keeps the router it has
        app.state.router.domain_router = new
        if canary is not None:
            canary.router = new

    reload_domain_router = DomainRouterReloader(
        lambda: app.state.router.domain_router,
        lambda: build_router(settings.domain_router, artifacts_dir=settings.artifacts_dir, domains=settings.domains,
                             default_domain=settings.general_domain),
        lambda: artifact_version(settings.artifacts_dir), swap_domain_router)
    app.include_router(reload_router(InternalAuthSettings().token, lambda request: request.app.state.router.pool,
                                     reload_domain_router))

    @app.get("/ready")
    def ready(request: Request) -> JSONResponse:
        state: RouterState | None = getattr(request.app.state, "router", None)
        # Ready when every model served has one live worker, not when every worker is up: a replica
        # down must not take the router out of its load balancer. Until each worker has answered
        # once its models are unknown, so start-up also waits for all of them (a client must not
        # see `tandem-code` missing because the modifier worker is still loading its adapters).
        unseen = [w.name for w in settings.workers if not state.pool.served_by_worker(w.name)] if state else []
        if state is None or settings.base_model_name not in state.pool.models or unseen or \
                state.pool.unserved_models():
            return JSONResponse({"status": "waiting for workers", "workers": state.pool.up if state else {},
                                 "unserved_models": state.pool.unserved_models() if state else []},
                                status_code=503)
        return JSONResponse({"status": "ready", "workers": state.pool.up, "models": state.public_models(),
                             "pid": os.getpid()})

    @app.get("/v1/models", dependencies=[Depends(access)])
    def models(state: StateDep) -> ModelList:
        return ModelList(data=[ModelCard(id=m) for m in state.public_models()])

    @app.get("/v1/models/{model_id:path}", dependencies=[Depends(access)])
    async def model(model_id: str, state: StateDep) -> ModelCard:
        if model_id not in state.public_models():
            raise ModelNotFoundError(f"The model '{model_id}' does not exist. Available models: "
                                     f"{', '.join(state.public_models())}.", param="model")
        return ModelCard(id=model_id, owned_by="fallback" if model_id in state.gate.models else "tandem")

    @app.post("/v1/completions", dependencies=[Depends(access)])
    async def completions(body: CompletionRequest, request: Request, state: StateDep) -> Response:
        """Legacy completions (completions.py): routed like chat, without cache or escalation."""
        started = time.perf_counter()
        chat = chat_view(body)
        if body.model == AUTO_MODEL and getattr(state.domain_router, "cpu_bound", True):
            facts, _ = await run_in_threadpool(state.decide, chat)
        else:
            facts, _ = state.decide(chat)
        facts.request_id, facts.cache = request.state.request_id, "bypass"
        state.recent.remember(facts.request_id, facts.domain, facts.route)
        response = await limits.run(legacy_completion(body, facts, state, started), started, facts.route,
                                    facts.headers())
        return state.after_answer(response, chat, facts)

    @app.post("/v1/route", dependencies=[Depends(access)])
    def route(body: ChatCompletionRequest, state: StateDep) -> dict:
        """The routing decision for a request, without generating."""
        decision = state.domain_router.route(body)
        verdict = state.gate.before(body, decision)
        return {**decision.model_dump(), "target": state.model_for_domain(decision.domain),
                "escalate": verdict is not None, "escalation_reason": verdict.policy if verdict else None}

    @app.post("/v1/feedback", dependencies=[Depends(access)])
    async def feedback(body: FeedbackRequest, state: StateDep) -> FeedbackResponse:
        response = await record_feedback(body, state.recent, settings.domains, router_metrics)
        if state.traffic is not None:
            state.traffic.feedback(body.request_id, body.rating, body.correct_domain, response.counted)
        return response

    @app.post("/v1/chat/completions", dependencies=[Depends(access)])
    async def chat_completions(body: ChatCompletionRequest, request: Request, state: StateDep) -> Response:
        started = time.perf_counter()
        request_id = request.state.request_id  # the id the catch-all error handler reports too
        plan = state.cache.plan(body, request.headers, state.cache_scope(body.model)) \
            if state.cache is not None else None
        if plan is not None:
            hit = await state.cache.get(plan)
            if hit is not None:
                return state.sample_traffic(cached_response(hit, body, request_id, state, started), body, request,
                                            started)
        if body.model == AUTO_MODEL and getattr(state.domain_router, "cpu_bound", True):
            facts, decision = await run_in_threadpool(state.decide, body)  # e.g. ONNX: off the event loop
        else:
            facts, decision = state.decide(body)
        facts.request_id = request_id
        facts.cache = "miss" if plan is not None and plan.lookup else "bypass"
        state.recent.remember(facts.request_id, facts.domain, facts.route)
        response = await limits.run(answer(body, facts, decision, plan, state, started), started, facts.route,
                                    facts.headers())
        return state.sample_traffic(state.after_answer(response, body, facts), body, request, started)

    mount_playground(app, access)
    return app

