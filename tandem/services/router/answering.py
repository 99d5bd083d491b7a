"""The answer path after routing: cached answers, escalation to the fallback (before generation,
after it, or by explicit model), local generation on a worker, and storing what was served.

Streams decide escalation before the first byte or not at all: only `before` policies (and an
explicit fallback model) apply to them; `after` policies need the whole answer, which a stream
has already shown the client. Non-streamed requests with an `after` policy ask the worker for
logprobs, and strip them from the answer when the client did not ask for them.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

import httpx
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tandem.cache.replay import StreamAssembler, replay_sse
from tandem.cache.response_cache import CachedAnswer, CachePlan
from tandem.common.errors import OverloadedError, TandemError, error_body
from tandem.common.wire import ChatCompletionRequest, new_completion_id
from tandem.escalation.answers import Answer
from tandem.routing.base import RouteDecision
from tandem.services.router.route_facts import RouteFacts

if TYPE_CHECKING:
    from tandem.services.router.app import RouterState

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


async def answer(body: ChatCompletionRequest, facts: RouteFacts, decision: RouteDecision | None,
                 plan: CachePlan | None, state: RouterState, started: float) -> Response:
    gate = state.gate
    if facts.escalated:  # an explicit fallback model
        reply = await gate.ask(_fallback_payload(body, body.model), "explicit", "explicit_model")
        if reply.response is not None:
            facts.escalation_reason = "explicit_model"
            return await _served(reply.response, body, facts, plan, state, started, "fallback")
        facts.escalated, facts.escalation_refused = False, reply.refused or "refused"
        facts.route, facts.domain = state.settings.base_model_name, state.settings.general_domain
    else:
        verdict = await off_loop(gate, gate.before, body, decision)
        if verdict is not None:
            reply = await gate.ask(_fallback_payload(body, gate.settings.fallback_model), "before", verdict.policy)
            if reply.response is not None:
                facts.escalated, facts.escalation_reason = True, verdict.policy
                facts.route = gate.settings.fallback_model
                return await _served(reply.response, body, facts, plan, state, started, "fallback")
            facts.escalation_refused = reply.refused or "refused"
    return await _local(body, facts, decision, plan, state, started)


async def _local(body: ChatCompletionRequest, facts: RouteFacts, decision: RouteDecision | None,
                 plan: CachePlan | None, state: RouterState, started: float) -> Response:
    worker = state.pool.worker_for(facts.route)
    if worker is None:
        raise OverloadedError(f"No worker serving '{facts.route}' is available right now.",
                              headers={"Retry-After": "2", **facts.headers()})
    payload = _fallback_payload(body, facts.route)
    judge_after = state.gate.needs_logprobs and not body.stream and not facts.escalation_refused
    if judge_after:
        payload["logprobs"] = True
    try:
        upstream = await state.pool.send(worker, payload)
    except TandemError as exc:
        state.router_metrics.upstream_errors.labels(worker.name, exc.code or "error").inc()
        state.metrics.observe(facts.route, exc.status_code, time.perf_counter() - started)
        exc.headers.update(facts.headers())
        raise
    return await _served(upstream, body, facts, plan, state, started, worker.name, decision, judge_after)


async def _served(upstream: httpx.Response, body: ChatCompletionRequest, facts: RouteFacts, plan: CachePlan | None,
                  state: RouterState, started: float, source: str, decision: RouteDecision | None = None,
                  judge_after: bool = False) -> Response:
    """Return an open upstream response (worker or fallback) to the client; store a good answer."""
    store = plan if facts.escalation_refused == "" else None
    if upstream.status_code == 200 and body.stream:
        return StreamingResponse(relay(upstream, facts, started, state, source, store),
                                 media_type="text/event-stream", headers={**facts.headers(), **SSE_HEADERS})
    try:
        raw = await upstream.aread()
    finally:  # also when the router's deadline cancels the read: the connection goes back to the pool
        await upstream.aclose()
    if upstream.status_code != 200:
        state.metrics.observe(facts.route, upstream.status_code, time.perf_counter() - started)
        return Response(raw, status_code=upstream.status_code, media_type="application/json",
                        headers={**passed_on(upstream), **facts.headers()})
    data = json.loads(raw)
    if judge_after:
        escalated = await _judge_after(data, body, facts, decision, plan, state, started)
        if escalated is not None:
            return escalated
        store = plan if facts.escalation_refused == "" else None
    state.metrics.observe(facts.route, 200, time.perf_counter() - started)
    usage = data.get("usage") or {}
    state.metrics.tokens(facts.route, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    if store is not None and state.cache is not None:
        await state.cache.put(store, data, _stored_facts(facts))
    return JSONResponse({**data, "tandem": facts.model_dump()}, headers=facts.headers())


async def _judge_after(data: dict, body: ChatCompletionRequest, facts: RouteFacts, decision: RouteDecision | None,
                       plan: CachePlan | None, state: RouterState, started: float) -> Response | None:
    """Apply `after` policies to a local answer; the fallback's response when one escalates and answers."""
    choice = data["choices"][0]
    answer = Answer.from_choice(choice)
    if not body.logprobs:
        choice.pop("logprobs", None)
    verdict = await off_loop(state.gate, state.gate.after, body, decision, answer)
    if verdict is None:
        return None
    reply = await state.gate.ask(_fallback_payload(body, state.gate.settings.fallback_model), "after",
                                 verdict.policy)
    if reply.response is None:
        facts.escalation_refused = reply.refused or "refused"
        return None
    facts.escalated, facts.escalation_reason = True, verdict.policy
    facts.route = state.gate.settings.fallback_model
    return await _served(reply.response, body, facts, plan, state, started, "fallback")


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
    """Pass an SSE stream through chunk by chunk; closing it (client gone) closes the upstream's. A stream
    that completes is assembled into an answer and stored in the cache."""
    metrics = state.metrics
    assembler = StreamAssembler() if plan is not None and state.cache is not None else None
    first = True
    status = 200
    chunks = upstream.aiter_raw()
    try:
        while True:
            try:  # the rest of the request's deadline (limits.py) bounds the stream too
                chunk = await asyncio.wait_for(anext(chunks), max(0.0, state.settings.request_deadline_s -
                                                                  (time.perf_counter() - started)))
            except StopAsyncIteration:
                break
            except TimeoutError:
                status = 504
                message = f"The answer did not finish within the router's deadline of {state.settings.request_deadline_s:g}s."
                yield f"data: {json.dumps(error_body(message, 'timeout_error', None, 'deadline_exceeded'))}\n\n".encode()
                break
            if first:
                metrics.ttft.labels(metrics.service, facts.route).observe(time.perf_counter() - started)
                first = False
            if b'"usage"' in chunk:
                _count_stream_usage(metrics, facts.route, chunk)
            if assembler is not None:
                assembler.feed(chunk)
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
    completion = assembler.completion() if assembler is not None and status == 200 else None
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
