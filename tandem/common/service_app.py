"""The skeleton every Tandem service shares: OpenAI-shaped errors, /metrics and /health."""

from __future__ import annotations

from fastapi import FastAPI

from tandem.common.errors import install_error_handlers
from tandem.common.metrics import ServiceMetrics


def service_app(title: str, lifespan, metrics: ServiceMetrics) -> FastAPI:
    app = FastAPI(title=title, lifespan=lifespan)
    install_error_handlers(app)
    metrics.mount(app)

    @app.get("/health")
    def health() -> dict:
        return {"status": "alive"}

    return app
