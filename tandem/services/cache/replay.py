"""Cached answers and streams: replay a stored completion as SSE, and assemble a relayed SSE stream
into a completion that can be stored.

A cached answer is stored in the non-streamed `chat.completion` shape whichever way it was asked
for, so a streamed request can hit an answer first given to a non-streamed one and vice versa.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

WORD = re.compile(r"\s*\S+\s*|\s+")


def _chunk(base: dict, choices: list[dict], usage: dict | None = None) -> bytes:
    payload = {**base, "object": "chat.completion.chunk", "choices": choices}
    if usage is not None:
        payload["usage"] = usage
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def replay_sse(response: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    """The SSE chunks a worker would have sent for `response`: role, text (word by word), finish, usage."""
    base = {"id": response["id"], "created": int(time.time()), "model": response["model"]}
    choice = response["choices"][0]
    message = choice["message"]
    yield _chunk(base, [{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    logprobs = choice.get("logprobs")
    if message.get("tool_calls"):
        calls = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        yield _chunk(base, [{"index": 0, "delta": {"tool_calls": calls}}])
    elif logprobs:
        yield _chunk(base, [{"index": 0, "delta": {"content": message.get("content") or ""}, "logprobs": logprobs}])
    else:
        for piece in WORD.findall(message.get("content") or ""):
            yield _chunk(base, [{"index": 0, "delta": {"content": piece}}])
    yield _chunk(base, [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}])
    if include_usage:
        yield _chunk(base, [], usage=response.get("usage") or {})
    yield b"data: [DONE]\n\n"


class StreamAssembler:
    """Feed it the raw bytes of an SSE chat stream; `completion()` is the equivalent non-streamed answer,
    or None when the stream broke, carried an error or never finished."""

    def __init__(self):
        self._buffer = b""
        self._base: dict[str, Any] = {}
        self._content: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}  # tool calls by index, their arguments joined
        self._logprobs: list[dict] = []
        self._finish: str | None = None
        self._usage: dict | None = None
        self._failed = False
        self._done = False

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            event, self._buffer = self._buffer.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    self._line(line[6:])

    def _line(self, data: bytes) -> None:
        if data.strip() == b"[DONE]":
            self._done = True
            return
        try:
            payload = json.loads(data)
        except ValueError:
            self._failed = True
            return
        if "error" in payload:
            self._failed = True
            return
        self._base = self._base or {k: payload.get(k) for k in ("id", "created", "model")}
        if payload.get("usage"):
            self._usage = payload["usage"]
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") or {}
            self._content.append(delta.get("content") or "")
            for part in delta.get("tool_calls") or []:
                self._call_part(part)
            if choice.get("logprobs") and choice["logprobs"].get("content"):
                self._logprobs += choice["logprobs"]["content"]
            self._finish = choice.get("finish_reason") or self._finish

    def _call_part(self, part: dict[str, Any]) -> None:
        """OpenAI streams a call as parts sharing an `index`: id, type and name once, arguments in pieces."""
        call = self._calls.setdefault(part.get("index", len(self._calls)),
                                      {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        call["id"] = part.get("id") or call["id"]
        call["type"] = part.get("type") or call["type"]
        function = part.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""

    @property
    def done(self) -> bool:
        """The stream's `[DONE]` has been read."""
        return self._done

    def completion(self) -> dict[str, Any] | None:
        if self._failed or not self._done or self._finish is None or not self._base:
            return None
        content = "".join(self._content)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self._calls:
            message = {"role": "assistant", "content": content or None,
                       "tool_calls": [self._calls[i] for i in sorted(self._calls)]}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": self._finish}
        if self._logprobs:
            choice["logprobs"] = {"content": self._logprobs}
        out = {**self._base, "object": "chat.completion", "choices": [choice]}
        if self._usage:
            out["usage"] = self._usage
        return out
