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


def exact_key(body: ChatCompletionRequest) -> str:
    return f"{KEY_VERSION}:{_digest(normalized(body))}"


def context_key(body: ChatCompletionRequest) -> str:
    """Everything but the messages' text: a semantic hit must match this exactly."""
    payload = normalized(body)
    payload["messages"] = [{k: v for k, v in m.items() if k != "content"} for m in payload["messages"]]
    return _digest(payload)


def prompt_text(body: ChatCompletionRequest) -> str:
    """The text a semantic match compares: every message, role-tagged."""
    return "\n".join(f"{m.role}: {m.text()}" for m in body.messages)
