"""Prometheus metrics, prefixed `tandem_`, one registry per app so several apps can live in one
process (tests) without clashing.

Every service exports the request family; the router adds routing, cache and escalation series.
Grafana dashboards (deploy/grafana) query only names defined here.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """The request-level series every Tandem service exports."""

    def __init__(self, service: str):
        self.registry = CollectorRegistry()
        labels = ["service", "route", "status"]
        self.service = service
        self.requests = Counter("tandem_requests", "Chat requests by route and HTTP status.", labels,
                                registry=self.registry)
        self.latency = Histogram("tandem_request_latency_seconds", "End-to-end request latency.",
                                 ["service", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ttft = Histogram("tandem_time_to_first_token_seconds", "Time to the first generated token.",
                              ["service", "route"], buckets=TTFT_BUCKETS, registry=self.registry)
        self.prompt_tokens = Counter("tandem_prompt_tokens", "Prompt tokens processed.", ["service", "route"],
                                     registry=self.registry)
        self.completion_tokens = Counter("tandem_completion_tokens", "Tokens generated.", ["service", "route"],
                                         registry=self.registry)
        self.queue_depth = Gauge("tandem_queue_depth", "Requests waiting for an engine slot.", ["service"],
                                 registry=self.registry)
        self.active = Gauge("tandem_active_sequences", "Sequences being generated now.", ["service"],
                            registry=self.registry)
        self.responses = Counter("tandem_http_responses", "Every HTTP response, by handler (the route's path "
                                 "template, 'unmatched' for unknown paths) and status: 4xx and 5xx included, "
                                 "whatever produced them.", ["service", "handler", "status"],
                                 registry=self.registry)

    def observe(self, route: str, status: int, latency: float | None = None) -> None:
        self.requests.labels(self.service, route, str(status)).inc()
        if latency is not None:
            self.latency.labels(self.service, route).observe(latency)

    def tokens(self, route: str, prompt: int, completion: int) -> None:
        self.prompt_tokens.labels(self.service, route).inc(prompt)
        self.completion_tokens.labels(self.service, route).inc(completion)

    def mount(self, app: FastAPI) -> None:
        app.state.metrics = self
        @app.get("/metrics", include_in_schema=False)
        def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class ResponseCounter:
    """Pure ASGI middleware counting every response's status in `tandem_http_responses`.

    It wraps the whole app (`service_app` puts it outside every other middleware and the error
    handlers), so errors raised before a handler runs (body limit, auth, validation, 503 with no
    worker) and unhandled exceptions (500) are counted too. Labels are bounded: the handler is the
    matched route's path template, never the client's path, and the status is an HTTP code.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = scope.get("route")
                handler = getattr(route, "path", None) or "unmatched"
                self.metrics.responses.labels(self.metrics.service, handler, str(status)).inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if status is None:  # nothing was sent: the server answers 500
                self.metrics.responses.labels(self.metrics.service, "unmatched", "500").inc()
            raise
