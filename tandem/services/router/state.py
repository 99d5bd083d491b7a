"""What the router app holds for every request: its settings, workers, domain router, cache,
escalation gate and metrics, and the routing decision they make together (`RouterState.decide`).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from tandem.common.errors import ModelNotFoundError, OverloadedError
from tandem.common.metrics import ServiceMetrics
from tandem.common.wire import ChatCompletionRequest
from tandem.services.cache.response_cache import ResponseCache
from tandem.services.escalation.gateway import EscalationGate
from tandem.services.router.feedback import DecisionLedger
from tandem.services.router.judge import RoutingJudge
from tandem.services.router.route_facts import RouteFacts
from tandem.services.router.router_metrics import RouterMetrics
from tandem.services.router.settings import RouterSettings
from tandem.services.router.tool_guard import ToolFitGuard
from tandem.services.router.traffic_log import TrafficLog
from tandem.services.router.workers import WorkerPool
from tandem.services.routing.base import DomainRouter, RouteDecision

AUTO_MODEL = "auto"


class RouterState:
    def __init__(self, settings: RouterSettings, pool: WorkerPool, domain_router: DomainRouter,
                 metrics: ServiceMetrics, router_metrics: RouterMetrics, cache: ResponseCache | None,
                 gate: EscalationGate, recent: DecisionLedger, judge: RoutingJudge | None = None,
                 traffic: TrafficLog | None = None, tool_guard: ToolFitGuard | None = None):
        self.settings = settings
        self.pool = pool
        self.domain_router = domain_router
        self.metrics = metrics
        self.router_metrics = router_metrics
        self.cache = cache
        self.gate = gate
        self.recent = recent
        self.judge = judge
        self.traffic = traffic
        self.tool_guard = tool_guard

    def sample_traffic(self, response: Response, body: ChatCompletionRequest, request: Request,
                       started: float) -> Response:
        """Offer an answered chat request to the traffic log (traffic_log.py): a queue put, or a stream's
        body wrapped to keep a copy; the writing happens on the log's own thread."""
        if self.traffic is None:
            return response
        return self.traffic.observe(response, body, request.headers, started)

    def after_answer(self, response: Response, body: ChatCompletionRequest, facts: RouteFacts) -> Response:
        """Offer an answered `auto` request to judge sampling, once its response has been sent (a background
        task that only schedules the judgement: the client never waits for it)."""
        if self.judge is not None and body.model == AUTO_MODEL and response.status_code == 200 \
                and response.background is None:
            response.background = BackgroundTask(self.judge.submit, body, facts.domain)
        return response

    def cache_scope(self, model: str) -> str:
        """The response cache's scope (workers.py), plus for `auto` the domain router's version: an answer
        routed by a router since replaced (POST /admin/reload) is not served for the new one."""
        scope = self.pool.cache_scope(model)
        version = getattr(self.domain_router, "version", None) if model == AUTO_MODEL else None
        return f"{scope},router={version}" if version else scope

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
