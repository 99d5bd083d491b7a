"""Fallback app factory: an OpenAI-compatible proxy to the frontier upstream.

Per request: known public model? -> reserve its worst-case cost in today's budget (budget.py) ->
upstream call (retries, circuit breaker) with the model name mapped -> relay (streams chunk by
chunk) -> cost = usage x price settles the reservation. Every refusal is an OpenAI error whose `code` (and the
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
from tandem.services.fallback.budget import BudgetUnavailable, DailyBudget, Reservation
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

    async def reserve(self, model: str, payload: dict) -> Reservation:
        """Count the call's largest possible cost before it is made (budget.py says why)."""
        worst = self.settings.prices[model].cost(prompt_bytes(payload), payload["max_tokens"])
        try:
            reservation = await self.budget.reserve(worst)
        except BudgetUnavailable as exc:
            raise FallbackRefusedError("budget_unavailable", f"The spend budget cannot be checked: {exc}.") from exc
        self.fallback_metrics.budget_remaining.set(self.settings.daily_budget_usd - reservation.total)
        if not reservation.granted:
            left = self.settings.daily_budget_usd - reservation.total
            raise FallbackRefusedError("budget_exhausted", f"Today's fallback budget of "
                                       f"${self.settings.daily_budget_usd:.2f} has ${left:.4f} left, less than this "
                                       f"request may cost (${worst:.4f} at max_tokens={payload['max_tokens']}).")
        return reservation

    async def settle(self, model: str, reservation: Reservation, usage: dict | None) -> None:
        """Replace the reservation by the actual cost; without usage (unknown cost) keep all of it."""
        if usage is None:
            cost = reservation.usd
        else:
            cost = self.settings.prices[model].cost(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
            self.fallback_metrics.spend.labels(model).inc(cost)
            self.metrics.tokens(model, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        try:
            total = await self.budget.settle(reservation, cost)
        except BudgetUnavailable as exc:
            log.error("spend of $%.6f on %s not settled (its reservation of $%.6f stays counted): %s", cost, model,
                      reservation.usd, exc)
            return
        self.fallback_metrics.budget_remaining.set(self.settings.daily_budget_usd - total)


def prompt_bytes(payload: dict) -> int:
    """An upper bound of the prompt's tokens: its messages' and tools' UTF-8 bytes (every token of a
    byte-level BPE holds at least one byte; template tokens are covered by the JSON punctuation)."""
    return len(json.dumps([payload.get("messages"), payload.get("tools")], ensure_ascii=False).encode())


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
        try:
            spent = await state.budget.spent()
        except BudgetUnavailable as exc:
            raise FallbackRefusedError("budget_unavailable", f"The spend budget cannot be read: {exc}.") from exc
        return {"day": time.strftime("%Y-%m-%d", time.gmtime()), "spent_usd": spent,
                "limit_usd": settings.daily_budget_usd, "remaining_usd": settings.daily_budget_usd - spent}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, state: StateDep) -> Response:
        started = time.perf_counter()
        model = body.model
        if model not in settings.model_map:
            raise ModelNotFoundError(f"The fallback serves {', '.join(settings.model_map)}, not '{model}'.",
                                     param="model")
        payload = body.model_dump(exclude_none=True)
        payload["model"] = settings.model_map[model]
        # A bounded answer bounds the reservation; the request's own limit wins when it gives one.
        payload["max_tokens"] = body.token_limit(settings.default_max_tokens)
        payload.pop("max_completion_tokens", None)
        if body.stream:
            payload["stream_options"] = {"include_usage": True}
        reservation = None
        try:
            reservation = await state.reserve(model, payload)
            upstream = await state.upstream.send(payload)
        except FallbackRefusedError as exc:
            if reservation is not None:  # refused before or by the upstream: not billed, refund it all; but a
                # call that timed out may still be generating (and billing): its cost is unknown, keep it
                await state.settle(model, reservation, None if exc.reason == "upstream_timeout" else {})
            fallback_metrics.refusals.labels(exc.reason).inc()
            metrics.observe(model, exc.status_code, time.perf_counter() - started)
            raise
        except BaseException:
            if reservation is not None:  # the call may have been made: its cost is unknown, keep it all
                await state.settle(model, reservation, None)
            raise
        if upstream.status_code != 200 or not body.stream:
            try:
                raw = await upstream.aread()
            finally:
                await upstream.aclose()
            metrics.observe(model, upstream.status_code, time.perf_counter() - started)
            if upstream.status_code != 200:
                await state.settle(model, reservation, {})  # an upstream error is not billed
                return _upstream_error(raw, upstream.status_code)
            try:
                data = json.loads(raw)
            except ValueError:  # billed or not, unknown: the reservation stays spent
                await state.settle(model, reservation, None)
                raise FallbackRefusedError("upstream_error", "The upstream answered 200 with a body that is not "
                                           f"JSON ({len(raw)} bytes).") from None
            await state.settle(model, reservation, data.get("usage"))
            data["model"] = model
            return JSONResponse(data)
        wants_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_relay(upstream, state, model, wants_usage, started, reservation),
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    return app


async def _relay(upstream: httpx.Response, state: FallbackState, model: str, wants_usage: bool, started: float,
                 reservation: Reservation):
    """Pass the upstream's SSE events through, with our model name; settle the reservation with the usage
    event (and drop that event when the client did not ask for usage)."""
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
        await state.settle(model, reservation, usage or None)
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
