"""Fallback app factory: an OpenAI-compatible proxy to the frontier upstream.

Per request: known public model? -> budget left today? -> upstream call (retries, circuit
breaker) with the model name mapped -> relay (streams chunk by chunk) -> cost = usage x price,
added to the day's spend. Every refusal is an OpenAI error whose `code` (and the
`x-tandem-fallback-refused` header) says why: the router then serves the local answer.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tandem.common.errors import ModelNotFoundError, error_body
from tandem.common.metrics import ServiceMetrics
from tandem.common.service_app import service_app
from tandem.common.wire import ChatCompletionRequest, ModelCard, ModelList
from tandem.services.fallback.budget import BudgetUnavailable, DailyBudget
from tandem.services.fallback.fallback_metrics import FallbackMetrics
from tandem.services.fallback.refusals import FallbackRefusedError
from tandem.services.fallback.settings import FallbackSettings
from tandem.services.fallback.upstream import Upstream

log = logging.getLogger(__name__)


class FallbackState:
    def __init__(self, settings: FallbackSettings, upstream: Upstream, budget: DailyBudget,
                 metrics: ServiceMetrics, fallback_metrics: FallbackMetrics):
        self.settings = settings
        self.upstream = upstream
        self.budget = budget
        self.metrics = metrics
        self.fallback_metrics = fallback_metrics

    async def check_budget(self) -> None:
        try:
            remaining = await self.budget.remaining()
        except BudgetUnavailable as exc:
            raise FallbackRefusedError("budget_unavailable", f"The spend budget cannot be checked: {exc}.") from exc
        self.fallback_metrics.budget_remaining.set(remaining)
        if remaining <= 0:
            raise FallbackRefusedError("budget_exhausted", f"Today's fallback budget of "
                                       f"${self.settings.daily_budget_usd:.2f} is spent.")

    async def charge(self, model: str, usage: dict) -> None:
        cost = self.settings.prices[model].cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        self.fallback_metrics.spend.labels(model).inc(cost)
        self.metrics.tokens(model, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        try:
            total = await self.budget.add(cost)
        except BudgetUnavailable as exc:
            log.error("spend of $%.6f on %s not recorded: %s", cost, model, exc)
            return
        self.fallback_metrics.budget_remaining.set(self.settings.daily_budget_usd - total)


def get_state(request: Request) -> FallbackState:
    return request.app.state.fallback


StateDep = Annotated[FallbackState, Depends(get_state)]


def create_app(settings: FallbackSettings | None = None) -> FastAPI:
    settings = settings or FallbackSettings()
    metrics = ServiceMetrics(settings.service_name)
    fallback_metrics = FallbackMetrics(metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        upstream = Upstream(settings, fallback_metrics)
        budget = DailyBudget(settings.daily_budget_usd, settings.redis_url, settings.redis_timeout_s)
        app.state.fallback = FallbackState(settings, upstream, budget, metrics, fallback_metrics)
        try:
            yield
        finally:
            await upstream.aclose()
            await budget.aclose()

    app = service_app("Tandem fallback", lifespan, metrics, max_body_bytes=settings.max_body_bytes, internal=True)

    @app.get("/ready")
    def ready(request: Request) -> JSONResponse:
        state: FallbackState | None = getattr(request.app.state, "fallback", None)
        if state is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready", "models": list(settings.model_map),
                             "circuit": state.upstream.breaker.state.name.lower()})

    @app.get("/v1/models")
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=m, owned_by="fallback") for m in settings.model_map])

    @app.get("/v1/budget")
    async def budget(state: StateDep) -> dict:
        spent = await state.budget.spent()
        return {"day": time.strftime("%Y-%m-%d", time.gmtime()), "spent_usd": spent,
                "limit_usd": settings.daily_budget_usd, "remaining_usd": settings.daily_budget_usd - spent}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, state: StateDep) -> Response:
        started = time.perf_counter()
        model = body.model
        if model not in settings.model_map:
            raise ModelNotFoundError(f"The fallback serves {', '.join(settings.model_map)}, not '{model}'.",
                                     param="model")
        try:
            await state.check_budget()
            payload = body.model_dump(exclude_none=True)
            payload["model"] = settings.model_map[model]
            if body.stream:
                payload["stream_options"] = {"include_usage": True}
            upstream = await state.upstream.send(payload)
        except FallbackRefusedError as exc:
            fallback_metrics.refusals.labels(exc.reason).inc()
            metrics.observe(model, exc.status_code, time.perf_counter() - started)
            raise
        if upstream.status_code != 200 or not body.stream:
            raw = await upstream.aread()
            await upstream.aclose()
            metrics.observe(model, upstream.status_code, time.perf_counter() - started)
            if upstream.status_code != 200:
                return _upstream_error(raw, upstream.status_code)
            try:
                data = json.loads(raw)
            except ValueError:
                raise FallbackRefusedError("upstream_error", "The upstream answered 200 with a body that is not "
                                           f"JSON ({len(raw)} bytes).") from None
            await state.charge(model, data.get("usage") or {})
            data["model"] = model
            return JSONResponse(data)
        wants_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_relay(upstream, state, model, wants_usage, started),
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    return app


async def _relay(upstream: httpx.Response, state: FallbackState, model: str, wants_usage: bool, started: float):
    """Pass the upstream's SSE events through, with our model name; charge the usage event (and drop it
    when the client did not ask for usage)."""
    status, usage, buffer, first = 200, None, b"", True
    try:
        async for data in upstream.aiter_raw():
            if first:
                state.metrics.ttft.labels(state.metrics.service, model).observe(time.perf_counter() - started)
                first = False
            buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                out, event_usage, usage_only = _rewrite(event, model)
                usage = event_usage or usage
                if not usage_only or wants_usage:
                    yield out
    except httpx.HTTPError as exc:
        status = 502
        yield f"data: {json.dumps({'error': {'message': f'upstream failed mid-stream ({type(exc).__name__})', 'type': 'upstream_error', 'param': None, 'code': 'upstream_error'}})}\n\n".encode()
    except BaseException:
        status = 499
        raise
    finally:
        await upstream.aclose()
        if usage:
            await state.charge(model, usage)
        state.metrics.observe(model, status, time.perf_counter() - started)


def _upstream_error(raw: bytes, status: int) -> Response:
    """The upstream's error as it sent it when that is an OpenAI error body; else wrapped in one."""
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return Response(raw, status_code=status, media_type="application/json")
    except ValueError:
        pass
    message = f"The upstream answered {status} with a body that is not an OpenAI error: {raw[:200]!r}"
    return JSONResponse(error_body(message, "upstream_error", None, "upstream_error"), status_code=status)


def _rewrite(event: bytes, model: str) -> tuple[bytes, dict | None, bool]:
    """(event to send, its usage if any, whether it carries usage and nothing else)."""
    if not event.startswith(b"data: {"):
        return event + b"\n\n", None, False
    payload = json.loads(event[6:])
    if "model" in payload:
        payload["model"] = model
    usage = payload.get("usage")
    return (f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode(), usage,
            bool(usage) and not payload.get("choices"))
