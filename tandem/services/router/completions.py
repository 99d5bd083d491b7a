"""Legacy `/v1/completions` through the router: route the raw prompt, forward it to a worker.

The prompt is routed as a one-message chat (for `model=auto`) and generated from as is by the
worker (no chat template). Fallback models speak chat only, so naming one here is a 400; the
response cache and escalation policies, built around chat answers, are not applied.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, Response

from tandem.common.errors import InvalidRequestError, OverloadedError, TandemError
from tandem.common.legacy_wire import CompletionRequest
from tandem.common.wire import ChatCompletionRequest, ChatMessage
from tandem.services.router.answering import Ask, Reply, pass_through, read_json

if TYPE_CHECKING:
    from tandem.services.router.route_facts import RouteFacts
    from tandem.services.router.state import RouterState


def chat_view(body: CompletionRequest) -> ChatCompletionRequest:
    """The chat request the domain router and route resolution see for this prompt."""
    return ChatCompletionRequest(model=body.model, messages=[ChatMessage(role="user", content=body.text)],
                                 max_tokens=body.max_tokens, temperature=body.temperature)


async def legacy_completion(body: CompletionRequest, facts: RouteFacts, state: RouterState,
                            started: float) -> Response:
    if facts.escalated:
        raise InvalidRequestError(f"'{body.model}' is a fallback model, which serves chat completions only: call "
                                  "/v1/chat/completions.", param="model")
    worker = state.pool.worker_for(facts.route)
    if worker is None:
        raise OverloadedError(f"No worker serving '{facts.route}' is available right now.",
                              headers={"Retry-After": "2", **facts.headers()})
    payload = {**body.model_dump(exclude_none=True), "model": facts.route}
    try:
        upstream = await state.pool.send(worker, payload, path="/v1/completions")
    except TandemError as exc:
        state.router_metrics.upstream_errors.labels(worker.name, exc.code or "error").inc()
        state.metrics.observe(facts.route, exc.status_code, time.perf_counter() - started)
        exc.headers.update(facts.headers())
        raise
    reply = Reply(upstream, worker.name)
    if upstream.status_code != 200 or body.stream:  # a stream is relayed; an error passes as the worker sent it
        return await pass_through(Ask(chat_view(body), None, None, state, started), facts, reply)
    data = await read_json(reply, facts)
    state.metrics.observe(facts.route, 200, time.perf_counter() - started)
    usage = data.get("usage") or {}
    state.metrics.tokens(facts.route, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    return JSONResponse({**data, "tandem": facts.model_dump()}, headers=facts.headers())
