"""Cache keys: the sha256 of the normalized request.

Normalized means what can change the answer, in a canonical form: the requested model, the
messages (role, text, name, tool calls), tools, tool_choice and response_format, and the sampling parameters
(temperature, top_p, seed, stop, token limit, penalties, logprobs). Left out: `stream` and
`stream_options` (a streamed request replays a cached answer as SSE) and client bookkeeping
such as `user` or `metadata`. Whitespace inside text is kept: it can change the answer.
"""

from __future__ import annotations

import hashlib
import json

from tandem.common.wire import ChatCompletionRequest

KEY_VERSION = "v1"


def _message(message) -> dict:
    out = {"role": message.role, "content": message.text()}
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = message.tool_calls
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def sampling_fields(body: ChatCompletionRequest) -> dict:
    return {"temperature": body.temperature, "top_p": body.top_p, "seed": body.seed, "stop": body.stop,
            "max_tokens": body.max_completion_tokens or body.max_tokens, "logprobs": body.logprobs,
            "top_logprobs": body.top_logprobs, "presence_penalty": body.presence_penalty,
            "frequency_penalty": body.frequency_penalty}


def normalized(body: ChatCompletionRequest) -> dict:
    out = {"model": body.model, "messages": [_message(m) for m in body.messages], "tools": body.tools,
           "tool_choice": body.tool_choice, **sampling_fields(body)}
    if body.response_format is not None:  # only when given, so that the keys of earlier entries still match
        out["response_format"] = body.response_format
    return out


def _digest(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def exact_key(body: ChatCompletionRequest, scope: str = "") -> str:
    """`scope`: the version of what answers (model and adapter sha, see the router's WorkerPool), so an
    answer made by an older adapter is never served once the adapter changes."""
    payload = normalized(body)
    if scope:  # only when known, so that the keys of earlier entries still match
        payload["scope"] = scope
    return f"{KEY_VERSION}:{_digest(payload)}"


def semantic_eligible(body: ChatCompletionRequest) -> bool:
    """A semantic match only for one user question (after system messages) and no tools: a tool call can
    have side effects, and in a conversation the same words can mean something else; those match exactly
    or not at all."""
    roles = [m.role for m in body.messages]
    return (not body.tools and not body.tool_choice and roles[-1:] == ["user"]
            and all(r in ("system", "developer") for r in roles[:-1]))


def context_key(body: ChatCompletionRequest, scope: str = "") -> str:
    """Everything but the last user message's text (model, scope, system prompt, sampling...): a semantic
    hit must match this exactly."""
    payload = normalized(body)
    payload["messages"] = payload["messages"][:-1] + [{k: v for k, v in payload["messages"][-1].items()
                                                       if k != "content"}]
    payload["scope"] = scope
    return _digest(payload)


def prompt_text(body: ChatCompletionRequest) -> str:
    """The text a semantic match compares: the last user message (the rest is in the context key)."""
    return body.messages[-1].text()
