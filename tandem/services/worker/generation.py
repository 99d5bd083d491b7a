"""Turn an OpenAI chat request into an engine generation, and its events into OpenAI responses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import Request

from tandem.common.errors import TandemError
from tandem.common.wire import (
    AssistantMessage,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    TokenLogprob,
    TopLogprob,
    Usage,
    new_completion_id,
)
from tandem.engine.batched import GenerationEvent, GenerationHandle, TokenInfo
from tandem.engine.chat import parse_tool_calls

DISCONNECT_POLL_S = 0.25


class GenerationFailedError(TandemError):
    status_code = 500
    error_type = "server_error"
    code = "generation_failed"


def to_logprobs(tokens: list[TokenInfo]) -> list[TokenLogprob]:
    return [TokenLogprob(token=t.text, logprob=t.logprob if t.logprob is not None else 0.0,
                         bytes=list(t.text.encode()),
                         top_logprobs=[TopLogprob(token=s, logprob=lp, bytes=list(s.encode())) for s, lp in t.top])
            for t in tokens]


async def _next_event(handle: GenerationHandle, request: Request) -> GenerationEvent:
    """The next engine event; cancels the generation if the client goes away meanwhile."""
    while True:
        try:
            return await asyncio.wait_for(handle.events.get(), timeout=DISCONNECT_POLL_S)
        except TimeoutError:
            if await request.is_disconnected():
                handle.cancel()
                raise asyncio.CancelledError("client disconnected")


class CompletionObserver:
    """Records time to first token and token counts for metrics."""

    def __init__(self, started: float):
        self.started = started
        self.first_token_at: float | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def saw(self, event: GenerationEvent) -> None:
        if self.first_token_at is None and (event.text or event.tokens or event.finish_reason):
            self.first_token_at = time.perf_counter()
        if event.finish_reason:
            self.prompt_tokens = event.prompt_tokens
            self.completion_tokens = event.completion_tokens

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started


async def complete(handle: GenerationHandle, body: ChatCompletionRequest, request: Request,
                   observer: CompletionObserver) -> ChatCompletionResponse:
    text, tokens = [], []
    try:
        while True:
            event = await _next_event(handle, request)
            observer.saw(event)
            if event.error:
                raise GenerationFailedError(event.error)
            text.append(event.text)
            tokens.extend(event.tokens)
            if event.finish_reason:
                break
    except BaseException:
        handle.cancel()
        raise
    content = "".join(text)
    finish = event.finish_reason
    tool_calls = parse_tool_calls(content) if body.tools else None
    message = AssistantMessage(content=None if tool_calls else content, tool_calls=tool_calls)
    return ChatCompletionResponse(
        model=body.model,
        choices=[Choice(message=message, finish_reason="tool_calls" if tool_calls else finish,
                        logprobs=ChoiceLogprobs(content=to_logprobs(tokens)) if body.logprobs else None)],
        usage=Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens,
                    total_tokens=event.prompt_tokens + event.completion_tokens),
    )


async def stream(handle: GenerationHandle, body: ChatCompletionRequest, observer: CompletionObserver) -> AsyncIterator[str]:
    """SSE chunks; closing the generator (client disconnect) cancels the generation."""
    completion_id, created = new_completion_id(), int(time.time())

    def chunk(delta: Delta, finish: str | None = None, tokens: list[TokenInfo] | None = None,
              usage: Usage | None = None, empty: bool = False) -> str:
        choices = [] if empty else [ChunkChoice(
            delta=delta, finish_reason=finish,
            logprobs=ChoiceLogprobs(content=to_logprobs(tokens or [])) if body.logprobs else None)]
        payload = ChatCompletionChunk(id=completion_id, created=created, model=body.model, choices=choices, usage=usage)
        return f"data: {payload.model_dump_json(exclude_none=True)}\n\n"

    finished = False
    try:
        yield chunk(Delta(role="assistant", content=""))
        while True:
            event = await handle.events.get()
            observer.saw(event)
            if event.error:
                yield f"data: {json.dumps(GenerationFailedError(event.error).body())}\n\n"
                finished = True
                return
            if event.text or event.tokens:
                yield chunk(Delta(content=event.text), tokens=event.tokens)
            if event.finish_reason:
                finished = True
                yield chunk(Delta(), finish=event.finish_reason)
                if body.stream_options and body.stream_options.include_usage:
                    usage = Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens,
                                  total_tokens=event.prompt_tokens + event.completion_tokens)
                    yield chunk(Delta(), usage=usage, empty=True)
                yield "data: [DONE]\n\n"
                return
    finally:
        if not finished:
            handle.cancel()
