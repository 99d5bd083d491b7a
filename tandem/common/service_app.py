"""The skeleton every Tandem service shares: OpenAI-shaped errors (a catch-all included), a byte
limit on request bodies, the internal credential on services behind the router, /metrics and
/health."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.types import ASGIApp

from tandem.common.catch_all import CatchAllMiddleware
from tandem.common.errors import install_error_handlers
from tandem.common.internal_auth import InternalAuthMiddleware, InternalAuthSettings
from tandem.common.metrics import ResponseCounter, ServiceMetrics
from tandem.common.request_guard import RequestBodyGuard

log = logging.getLogger(__name__)


class ServiceApp(FastAPI):
    """A FastAPI app whose response counter (`tandem_http_responses`) wraps the whole built stack.

    Middleware added with `add_middleware` nests in the order it is added, so a counter added like
    the others would miss what an outer one answers (catch-all 500s, auth 401s, body-limit 413s).
    Wrapping the built stack counts every response, whatever produced it.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return ResponseCounter(super().build_middleware_stack(), self.state.metrics)


def service_app(title: str, lifespan, metrics: ServiceMetrics, *, max_body_bytes: int,
                internal: bool) -> FastAPI:
    """`internal`: a service behind the router (worker, fallback), which then requires the internal
    token when one is configured; without one it serves anyone, and `launch` binds it only to
    loopback (`app.state.open_internal` says so)."""
    app = ServiceApp(title=title, lifespan=lifespan)
    install_error_handlers(app)
    metrics.mount(app)
    # Starlette wraps in reverse order of adding: the catch-all outermost, then auth (before any body
    # is read), then the body guard.
    app.add_middleware(RequestBodyGuard, max_body_bytes=max_body_bytes)
    app.state.open_internal = False
    if internal:
        token = InternalAuthSettings().token
        if token is None:
            app.state.open_internal = True
            log.warning("%s: no internal token (TANDEM_INTERNAL_TOKEN or TANDEM_INTERNAL_TOKEN_FILE) is set, "
                        "so it answers any caller; serve it on loopback only", title)
        else:
            app.add_middleware(InternalAuthMiddleware, token=token)
    app.add_middleware(CatchAllMiddleware)

    @app.get("/health")
    def health() -> dict:
        return {"status": "alive"}

    return app
