"""One soak request and what became of it, judged from the bytes the client got.

- completed: 200 with a well-formed chat completion, or a stream of well-formed chunks with one
  finish and one `[DONE]`;
- shed: 429/503 in the OpenAI error shape with Retry-After (well-formed), or without (malformed);
- failed: another error status in the OpenAI error shape, or a stream ended by an error event
  (the client is told, nothing is lost);
- lost: no response at all, or a stream cut without an error event;
- garbled: a body that is not what its status promises (bad JSON, wrong shape);
- duplicated: a completion id already seen, or a stream with two finishes or two `[DONE]`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx


@dataclass
class Outcome:
    kind: str  # completed, shed, shed_malformed, failed, lost, garbled
    stream: bool
    latency_s: float
    status: int | None = None
    detail: str = ""
    completion_id: str | None = None
    duplicated: bool = False


def _is_error_shape(data: object) -> bool:
    error = data.get("error") if isinstance(data, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)


def _error_outcome(response: httpx.Response, raw: bytes, stream: bool, latency: float) -> Outcome:
    try:
        data = json.loads(raw)
    except ValueError:
        return Outcome("garbled", stream, latency, response.status_code, f"non-JSON {response.status_code} body")
    shaped = _is_error_shape(data)
    code = data["error"].get("code") if shaped else None
    if response.status_code in (429, 503):
        ok = shaped and "retry-after" in response.headers
        return Outcome("shed" if ok else "shed_malformed", stream, latency, response.status_code, str(code))
    return Outcome("failed" if shaped else "garbled", stream, latency, response.status_code, str(code))


def _completion_ok(data: object) -> bool:
    if not isinstance(data, dict) or data.get("object") != "chat.completion" or not data.get("choices"):
        return False
    message = data["choices"][0].get("message") or {}
    return isinstance(message.get("content"), str) or bool(message.get("tool_calls"))


async def send(client: httpx.AsyncClient, body: dict) -> Outcome:
    started = time.perf_counter()
    stream = bool(body.get("stream"))
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200 or not stream:
                raw = await response.aread()
                latency = time.perf_counter() - started
                if response.status_code != 200:
                    return _error_outcome(response, raw, stream, latency)
                try:
                    data = json.loads(raw)
                except ValueError:
                    return Outcome("garbled", False, latency, 200, "non-JSON body")
                if not _completion_ok(data):
                    return Outcome("garbled", False, latency, 200, "not a chat.completion")
                return Outcome("completed", False, latency, 200, completion_id=data.get("id"))
            return await _read_stream(response, started)
    except httpx.HTTPError as exc:
        return Outcome("lost", stream, time.perf_counter() - started, None, f"no response ({type(exc).__name__})")


async def _read_stream(response: httpx.Response, started: float) -> Outcome:
    finishes = dones = 0
    completion_id = None
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[6:]
            if payload == "[DONE]":
                dones += 1
                continue
            try:
                data = json.loads(payload)
            except ValueError:
                return Outcome("garbled", True, time.perf_counter() - started, 200, "non-JSON event")
            if "error" in data:
                kind = "failed" if _is_error_shape(data) else "garbled"
                return Outcome(kind, True, time.perf_counter() - started, 200, f"error event {data['error'].get('code')}")
            if data.get("object") != "chat.completion.chunk":
                return Outcome("garbled", True, time.perf_counter() - started, 200, "not a chunk")
            completion_id = completion_id or data.get("id")
            finishes += sum(1 for c in data.get("choices") or [] if c.get("finish_reason"))
    except httpx.HTTPError as exc:
        return Outcome("lost", True, time.perf_counter() - started, 200, f"stream cut ({type(exc).__name__})")
    latency = time.perf_counter() - started
    if dones == 0 or finishes == 0:
        return Outcome("lost", True, latency, 200, "stream ended without finish/[DONE] or an error event")
    return Outcome("completed", True, latency, 200, completion_id=completion_id,
                   duplicated=finishes > 1 or dones > 1)
