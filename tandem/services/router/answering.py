"""The answer path after routing: cached answers, escalation to the fallback (before generation,
after it, or by explicit model), local generation on a worker, and storing what was served.

`answer` reads as the order of its steps: before-policy -> worker -> tool-fit guard -> after-policy ->
store (the cache lookup comes first, in app.py, before routing). Each step takes the route facts and
returns new ones (`model_copy`), with the reply it got, so no step changes what an earlier one decided.

Streams decide escalation before the first byte or not at all: only `before` policies (and an
explicit fallback model) apply to them; `after` policies need the whole answer, which a stream
has already shown the client. Non-streamed requests with an `after` policy ask the worker for
logprobs, and strip them from the answer when the client did not ask for them.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tandem.common.errors import OverloadedError, TandemError, UpstreamError, error_body
from tandem.common.wire import ChatCompletionRequest, new_completion_id
from tandem.services.cache.replay import StreamAssembler, replay_sse
from tandem.services.cache.response_cache import CachedAnswer, CachePlan
from tandem.services.escalation.answers import Answer
from tandem.services.router.route_facts import RouteFacts
from tandem.services.routing.base import RouteDecision

if TYPE_CHECKING:
    from tandem.services.router.state import RouterState

SSE_HEADERS = {"cache-control": "no-cache"}


def cached_response(hit: CachedAnswer, body: ChatCompletionRequest, request_id: str, state: RouterState,
                    started: float) -> Response:
    facts = RouteFacts(**{**hit.route, "request_id": request_id, "cache": "hit" if hit.kind == "exact" else "semantic",
                          "cache_similarity": hit.similarity if hit.kind == "semantic" else None})
    state.recent.remember(request_id, facts.domain, facts.route)
    state.metrics.observe("cache", 200, time.perf_counter() - started)
    response = {**hit.response, "id": new_completion_id()}
    if body.stream:  # every event is at hand: one body, no per-chunk hops
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Response(b"".join(replay_sse(response, include_usage)), media_type="text/event-stream",
                        headers={**facts.headers(), **SSE_HEADERS})
    return JSONResponse({**response, "tandem": facts.model_dump()}, headers=facts.headers())


def _fallback_payload(body: ChatCompletionRequest, model: str) -> dict:
    payload = body.model_dump(exclude_none=True)
    payload["model"] = model
    return payload


@dataclass(frozen=True)
class Ask:
    """What every step of one request's answer path reads: the request, its routing decision, its cache
    plan, the router's state and when it arrived."""

    body: ChatCompletionRequest
    decision: RouteDecision | None
    plan: CachePlan | None
    state: RouterState
    started: float


@dataclass(frozen=True)
class Reply:
    """An open upstream response (worker or fallback) and who sent it."""

    upstream: httpx.Response
    source: str  # the worker's name, or "fallback"


async def answer(body: ChatCompletionRequest, facts: RouteFacts, decision: RouteDecision | None,
                 plan: CachePlan | None, state: RouterState, started: float) -> Response:
    """The path after the cache lookup (app.py) and routing, one step after the other; each step
    returns new facts rather than changing them: before-policy -> worker -> after-policy -> store."""
    ask = Ask(body, decision, plan, state, started)
    facts, reply = await before_policy(ask, facts)
    if reply is None:
        facts, reply = await from_worker(ask, facts)
    if reply.upstream.status_code != 200 or body.stream:
        return await pass_through(ask, facts, reply)  # a stream is judged before its first byte or not at all
    data = await read_json(reply, facts)
    if reply.source != "fallback":
        facts, data = await tool_fit(ask, facts, data)
        facts, escalated = await after_policy(ask, facts, data)
        if escalated is not None:
            data = await read_json(escalated, facts)
    return await store(ask, facts, data)


async def before_policy(ask: Ask, facts: RouteFacts) -> tuple[RouteFacts, Reply | None]:
    """An explicit fallback model, or a `before` policy that escalates: the fallback's reply when it answers.
    A refused explicit model falls back to the base; a refused policy to the routed worker."""
    gate, settings = ask.state.gate, ask.state.settings
    if facts.escalated:
        reply = await gate.ask(_fallback_payload(ask.body, ask.body.model), "explicit", "explicit_model")
        if reply.response is not None:
            return facts.model_copy(update={"escalation_reason": "explicit_model"}), Reply(reply.response, "fallback")
        return facts.model_copy(update={"escalated": False, "escalation_refused": reply.refused or "refused",
                                        "route": settings.base_model_name, "domain": settings.general_domain}), None
    verdict = await off_loop(gate, gate.before, ask.body, ask.decision)
    if verdict is None:
        return facts, None
    reply = await gate.ask(_fallback_payload(ask.body, gate.settings.fallback_model), "before", verdict.policy)
    if reply.response is None:
        return facts.model_copy(update={"escalation_refused": reply.refused or "refused"}), None
    return facts.model_copy(update={"escalated": True, "escalation_reason": verdict.policy,
                                    "route": gate.settings.fallback_model}), Reply(reply.response, "fallback")


async def from_worker(ask: Ask, facts: RouteFacts) -> tuple[RouteFacts, Reply]:
    """The routed worker's open response (with logprobs when an `after` policy will judge it)."""
    state = ask.state
    worker = state.pool.worker_for(facts.route)
    if worker is None:
        raise OverloadedError(f"No worker serving '{facts.route}' is available right now.",
                              headers={"Retry-After": "2", **facts.headers()})
    payload = _fallback_payload(ask.body, facts.route)
    if _judged_after(ask, facts):
        payload["logprobs"] = True
    try:
        upstream = await state.pool.send(worker, payload)
    except TandemError as exc:
        state.router_metrics.upstream_errors.labels(worker.name, exc.code or "error").inc()
        state.metrics.observe(facts.route, exc.status_code, time.perf_counter() - ask.started)
        exc.headers.update(facts.headers())
        raise
    return facts, Reply(upstream, worker.name)


async def tool_fit(ask: Ask, facts: RouteFacts, data: dict) -> tuple[RouteFacts, dict]:
    """A modifier's tool call that does not fit the request (tool_guard.py) is replaced by the base's answer."""
    guard = ask.state.tool_guard
    if guard is None or facts.route not in guard.thresholds:
        return facts, data
    trip = await run_in_threadpool(guard.trips, facts.route, ask.body, data)
    if trip is None:
        return facts, data
    facts = facts.model_copy(update={"route": ask.state.settings.base_model_name, "tool_guard_similarity": trip.similarity,
                                     "tool_guard_grounding": trip.grounding})
    facts, reply = await from_worker(ask, facts)
    if reply.upstream.status_code != 200:
        await reply.upstream.aclose()
        raise UpstreamError(f"'{reply.source}' answered {reply.upstream.status_code} in place of a guarded tool call.",
                            headers=facts.headers())
    return facts, await read_json(reply, facts)


def _judged_after(ask: Ask, facts: RouteFacts) -> bool:
    """`after` policies judge non-streamed local answers, unless an escalation was already refused."""
    return ask.state.gate.needs_logprobs and not ask.body.stream and not facts.escalation_refused


async def after_policy(ask: Ask, facts: RouteFacts, data: dict) -> tuple[RouteFacts, Reply | None]:
    """Apply `after` policies to a local answer (in `data`, whose logprobs the client gets only if it
    asked for them); the fallback's reply when one escalates and the fallback answers."""
    if not _judged_after(ask, facts):
        return facts, None
    gate = ask.state.gate
    choice = data["choices"][0]
    local = Answer.from_choice(choice)
    if not ask.body.logprobs:
        choice.pop("logprobs", None)
    verdict = await off_loop(gate, gate.after, ask.body, ask.decision, local)
    if verdict is None:
        return facts, None
    reply = await gate.ask(_fallback_payload(ask.body, gate.settings.fallback_model), "after", verdict.policy)
    if reply.response is None:
        return facts.model_copy(update={"escalation_refused": reply.refused or "refused"}), None
    return facts.model_copy(update={"escalated": True, "escalation_reason": verdict.policy,
                                    "route": gate.settings.fallback_model}), Reply(reply.response, "fallback")


async def pass_through(ask: Ask, facts: RouteFacts, reply: Reply) -> Response:
    """A stream, relayed chunk by chunk (and stored once complete), or an upstream's error as it sent it."""
    upstream, state = reply.upstream, ask.state
    if upstream.status_code == 200:
        return StreamingResponse(relay(upstream, facts, ask.started, state, reply.source, _store_plan(ask, facts)),
                                 media_type="text/event-stream", headers={**facts.headers(), **SSE_HEADERS})
    try:
        raw = await upstream.aread()
    finally:
        await upstream.aclose()
    state.metrics.observe(facts.route, upstream.status_code, time.perf_counter() - ask.started)
    return Response(raw, status_code=upstream.status_code, media_type="application/json",
                    headers={**passed_on(upstream), **facts.headers()})


async def store(ask: Ask, facts: RouteFacts, data: dict) -> Response:
    """Count, cache (unless an escalation was refused: retry it next time) and return a whole answer."""
    state = ask.state
    state.metrics.observe(facts.route, 200, time.perf_counter() - ask.started)
    usage = data.get("usage") or {}
    state.metrics.tokens(facts.route, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    plan = _store_plan(ask, facts)
    if plan is not None and state.cache is not None:
        await state.cache.put(plan, data, _stored_facts(facts))
    return JSONResponse({**data, "tandem": facts.model_dump()}, headers=facts.headers())


def _store_plan(ask: Ask, facts: RouteFacts) -> CachePlan | None:
    return ask.plan if facts.escalation_refused == "" else None


async def read_json(reply: Reply, facts: RouteFacts) -> dict:
    """A whole 200 answer; the connection goes back to the pool even when the router's deadline cancels
    the read. A body that is not JSON is a 502 naming who sent it."""
    try:
        raw = await reply.upstream.aread()
    finally:
        await reply.upstream.aclose()
    try:
        return json.loads(raw)
    except ValueError:
        raise UpstreamError(f"'{reply.source}' answered 200 with a body that is not JSON ({len(raw)} bytes).",
                            headers=facts.headers()) from None


def passed_on(upstream: httpx.Response) -> dict[str, str]:
    """The headers of an upstream's refusal the client needs too (when to retry a 503 or 429)."""
    return {"Retry-After": upstream.headers["retry-after"]} if "retry-after" in upstream.headers else {}


async def off_loop(gate, judge, *args):
    """Run an escalation judgement in a worker thread when policies (models) run in it, so that their
    CPU time never stalls the streams this event loop relays; without policies it costs nothing."""
    if gate.enabled and gate.policies:
        return await run_in_threadpool(judge, *args)
    return judge(*args)


def _stored_facts(facts: RouteFacts) -> dict:
    return facts.model_dump(exclude={"request_id", "cache"})


async def relay(upstream: httpx.Response, facts: RouteFacts, started: float, state: RouterState, source: str,
                 plan: CachePlan | None):
    """Pass an SSE stream through, whole events at a time (so an error event the router adds never lands
    inside a half-sent one); closing it (client gone) closes the upstream's. A stream that completes is
    assembled into an answer and stored in the cache before its last event is sent."""
    metrics = state.metrics
    assembler = StreamAssembler() if plan is not None and state.cache is not None else None
    first = True
    status = 200
    chunks = upstream.aiter_raw()
    pending = b""  # bytes of an event not yet complete: only whole events are passed on
    try:
        while True:
            try:  # the rest of the request's deadline (limits.py) bounds the stream too
                chunk = await asyncio.wait_for(anext(chunks), max(0.0, state.settings.request_deadline_s -
                                                                  (time.perf_counter() - started)))
            except StopAsyncIteration:
                if pending:  # an upstream that does not end its last event with a blank line
                    if assembler is not None:
                        assembler.feed(pending)
                    yield pending
                break
            except TimeoutError:
                status = 504
                message = f"The answer did not finish within the router's deadline of {state.settings.request_deadline_s:g}s."
                yield f"data: {json.dumps(error_body(message, 'timeout_error', None, 'deadline_exceeded'))}\n\n".encode()
                break
            end = chunk.rfind(b"\n\n")
            if end < 0:
                pending += chunk
                continue
            chunk, pending = pending + chunk[:end + 2], chunk[end + 2:]
            if first:
                metrics.ttft.labels(metrics.service, facts.route).observe(time.perf_counter() - started)
                first = False
            if b'"usage"' in chunk:
                _count_stream_usage(metrics, facts.route, chunk)
            if assembler is not None:
                assembler.feed(chunk)
                if assembler.done:  # stored before the client sees the end: one that hangs up at [DONE]
                    await _store_stream(assembler, plan, facts, state)  # would cancel a store after it
                    assembler = None
            yield chunk
    except httpx.HTTPError as exc:
        status = 502
        state.router_metrics.upstream_errors.labels(source, "stream_broken").inc()
        message = f"The worker '{source}' failed mid-stream ({type(exc).__name__})."
        yield f"data: {json.dumps(error_body(message, 'upstream_error', None, 'worker_failed'))}\n\n".encode()
    except BaseException:
        status = 499
        raise
    finally:
        await upstream.aclose()
        metrics.observe(facts.route, status, time.perf_counter() - started)
    if assembler is not None and status == 200:  # an upstream that ended without [DONE]
        await _store_stream(assembler, plan, facts, state)


async def _store_stream(assembler: StreamAssembler, plan: CachePlan, facts: RouteFacts, state: RouterState) -> None:
    completion = assembler.completion()
    if completion is not None:
        await state.cache.put(plan, completion, _stored_facts(facts))


def _count_stream_usage(metrics, route: str, chunk: bytes) -> None:
    for line in chunk.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage"' in line:
            try:
                usage = json.loads(line[6:]).get("usage") or {}
            except ValueError:
                continue
            metrics.tokens(route, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
