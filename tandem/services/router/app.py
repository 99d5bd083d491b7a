"""Router app factory: the public gateway in front of the workers.

Request path (DESIGN.md): auth and limits -> route (explicit model, or the domain router for
`auto`) -> forward to the worker serving that model over pooled HTTP, streams passed through
chunk by chunk -> route facts in `x-tandem-*` headers (and a `tandem` field in JSON bodies).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tandem.common.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    OverloadedError,
    TandemError,
    error_body,
    install_error_handlers,
)
from tandem.common.metrics import ServiceMetrics
from tandem.common.wire import ChatCompletionRequest, ModelCard, ModelList
from tandem.routing.base import DomainRouter, RouteDecision, build_router
from tandem.services.router.access import AccessControl
from tandem.services.router.feedback import FeedbackRequest, FeedbackResponse, RecentDecisions
from tandem.services.router.route_facts import RouteFacts
from tandem.services.router.router_metrics import RouterMetrics
from tandem.services.router.settings import RouterSettings
from tandem.services.router.workers import WorkerPool

log = logging.getLogger(__name__)

AUTO_MODEL = "auto"


class RouterState:
    def __init__(self, settings: RouterSettings, pool: WorkerPool, domain_router: DomainRouter,
                 metrics: ServiceMetrics, router_metrics: RouterMetrics):
        self.settings = settings
        self.pool = pool
        self.domain_router = domain_router
        self.metrics = metrics
        self.router_metrics = router_metrics
        self.recent = RecentDecisions()

    def public_models(self) -> list[str]:
        return [AUTO_MODEL, *self.pool.models]

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


def get_state(request: Request) -> RouterState:
    return request.app.state.router


StateDep = Annotated[RouterState, Depends(get_state)]


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()
    metrics = ServiceMetrics(settings.service_name)
    router_metrics = RouterMetrics(metrics)
    access = AccessControl(settings)
    # Built here, not in lifespan, so a missing or corrupt router artifact fails at start-up.
    domain_router = build_router(settings.domain_router, artifacts_dir=settings.artifacts_dir,
                                 domains=settings.domains, default_domain=settings.general_domain)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = WorkerPool(settings)
        await pool.refresh()
        app.state.router = RouterState(settings, pool, domain_router, metrics, router_metrics)
        refresher = asyncio.create_task(pool.refresh_forever())
        try:
            yield
        finally:
            refresher.cancel()
            await pool.aclose()

    app = FastAPI(title="Tandem router", lifespan=lifespan)
    install_error_handlers(app)
    metrics.mount(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse(error_body(f"Request body is {length} bytes; the limit is {settings.max_body_bytes}.",
                                           "invalid_request_error", None, "request_too_large"), status_code=413)
        return await call_next(request)

    @app.get("/health")
    def health() -> dict:
        return {"status": "alive"}

    @app.get("/ready")
    def ready(request: Request) -> JSONResponse:
        state: RouterState | None = getattr(request.app.state, "router", None)
        if state is None or settings.base_model_name not in state.pool.models:
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
        return {**decision.model_dump(), "target": state.model_for_domain(decision.domain), "escalate": False}

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
    async def chat_completions(body: ChatCompletionRequest, state: StateDep) -> Response:
        started = time.perf_counter()
        facts, _ = state.decide(body)
        facts.request_id = f"req-{uuid.uuid4().hex[:20]}"
        state.recent.remember(facts.request_id, facts.domain, facts.route)
        worker = state.pool.worker_for(facts.route)
        if worker is None:
            raise OverloadedError(f"No worker serving '{facts.route}' is available right now.",
                                  headers={"Retry-After": "2", **facts.headers()})
        payload = body.model_dump(exclude_none=True)
        payload["model"] = facts.route
        try:
            upstream = await state.pool.send(worker, payload)
        except TandemError as exc:
            router_metrics.upstream_errors.labels(worker.name, exc.code or "error").inc()
            metrics.observe(facts.route, exc.status_code, time.perf_counter() - started)
            exc.headers.update(facts.headers())
            raise
        if upstream.status_code != 200 or not body.stream:
            raw = await upstream.aread()
            await upstream.aclose()
            metrics.observe(facts.route, upstream.status_code, time.perf_counter() - started)
            if upstream.status_code != 200:
                return Response(raw, status_code=upstream.status_code, media_type="application/json",
                                headers=facts.headers())
            data = json.loads(raw)
            usage = data.get("usage") or {}
            metrics.tokens(facts.route, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
            data["tandem"] = facts.model_dump()
            return JSONResponse(data, headers=facts.headers())
        return StreamingResponse(_relay(upstream, facts, started, state, worker.name),
                                 media_type="text/event-stream", headers={**facts.headers(), "cache-control": "no-cache"})

    return app


async def _relay(upstream: httpx.Response, facts: RouteFacts, started: float, state: RouterState, worker: str):
    """Pass a worker's SSE stream through chunk by chunk; closing it (client gone) closes the worker's."""
    metrics = state.metrics
    first = True
    status = 200
    try:
        async for chunk in upstream.aiter_raw():
            if first:
                metrics.ttft.labels(metrics.service, facts.route).observe(time.perf_counter() - started)
                first = False
            if b'"usage"' in chunk:
                _count_stream_usage(metrics, facts.route, chunk)
            yield chunk
    except httpx.HTTPError as exc:
        status = 502
        state.router_metrics.upstream_errors.labels(worker, "stream_broken").inc()
        message = f"The worker '{worker}' failed mid-stream ({type(exc).__name__})."
        yield f"data: {json.dumps(error_body(message, 'upstream_error', None, 'worker_failed'))}\n\n".encode()
    except BaseException:
        status = 499
        raise
    finally:
        await upstream.aclose()
        metrics.observe(facts.route, status, time.perf_counter() - started)


def _count_stream_usage(metrics: ServiceMetrics, route: str, chunk: bytes) -> None:
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage"' in line:
            try:
                usage = json.loads(line[6:]).get("usage") or {}
            except ValueError:
                continue
            metrics.tokens(route, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
