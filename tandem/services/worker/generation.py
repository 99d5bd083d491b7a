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
from tandem.services.engine.batched import EngineFailedError, GenerationEvent, GenerationHandle, TokenInfo
from tandem.services.engine.chat import parse_tool_calls
from tandem.services.worker.tool_stream import ToolCallHold

DISCONNECT_POLL_S = 0.25


class GenerationFailedError(TandemError):
    status_code = 500
    error_type = "server_error"
    code = "generation_failed"


class ClientDisconnected(Exception):
    """The client went away before the answer was complete (its generation is cancelled). The handler
    answers 499, which nobody reads, instead of letting an exception reach the server's error log."""


def event_error(event: GenerationEvent) -> TandemError:
    """The error an engine error event becomes: a dead engine is a 503 (retry once it is restarted)."""
    if event.fatal:
        return EngineFailedError(f"The worker stopped serving ({event.error}); retry shortly.",
                                 headers={"Retry-After": "2"})
    return GenerationFailedError(event.error or "generation failed")


def to_logprobs(tokens: list[TokenInfo]) -> list[TokenLogprob]:
    return [TokenLogprob(token=t.text, logprob=t.logprob if t.logprob is not None else 0.0,
                         bytes=list(t.text.encode()),
                         top_logprobs=[TopLogprob(token=s, logprob=lp, bytes=list(s.encode())) for s, lp in t.top])
            for t in tokens]


def offers_tools(body: ChatCompletionRequest) -> bool:
    """Whether the answer may be a tool call (tools offered, and tool_choice is not "none")."""
    return bool(body.tools) and body.tool_choice != "none"


async def collect_events(handle: GenerationHandle, request: Request,
                         observer: CompletionObserver) -> list[GenerationEvent]:
    """Every event of a non-streamed generation, up to the one with a finish reason. The client is checked
    at least every DISCONNECT_POLL_S, also while tokens keep coming (a fast generation never waits that
    long for one event, and would otherwise run to its end for nobody); if it has gone, the generation
    is cancelled and ClientDisconnected raised."""
    events: list[GenerationEvent] = []
    checked_at = time.monotonic()
    try:
        while True:
            try:
                event = await asyncio.wait_for(handle.events.get(), timeout=DISCONNECT_POLL_S)
            except TimeoutError:
                event = None
            if event is None or time.monotonic() - checked_at >= DISCONNECT_POLL_S:
                checked_at = time.monotonic()
                if await request.is_disconnected():
                    raise ClientDisconnected("client disconnected")
            if event is None:
                continue
            observer.saw(event)
            if event.error:
                raise event_error(event)
            events.append(event)
            if event.finish_reason:
                return events
    except BaseException:
        handle.cancel()
        raise


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
    events = await collect_events(handle, request, observer)
    event = events[-1]
    text = [e.text for e in events]
    tokens = [t for e in events for t in e.tokens]
    content = "".join(text)
    finish = event.finish_reason
    tool_calls = parse_tool_calls(content) if offers_tools(body) else None
    message = AssistantMessage(content=None if tool_calls else content, tool_calls=tool_calls)
    return ChatCompletionResponse(
        model=body.model,
        choices=[Choice(message=message, finish_reason="tool_calls" if tool_calls else finish,
                        logprobs=ChoiceLogprobs(content=to_logprobs(tokens)) if body.logprobs else None)],
        usage=Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens,
                    total_tokens=event.prompt_tokens + event.completion_tokens),
    )


def _final(event: GenerationEvent) -> bool:
    return bool(event.finish_reason or event.error)


async def coalesced_events(handle: GenerationHandle) -> AsyncIterator[GenerationEvent]:
    """The engine's events up to the final one. When several are already waiting (the stream lags
    behind the engine: a busy event loop, many streams, a slow reader), they go out merged as one, so
    one SSE chunk carries several tokens and the per-chunk work (JSON, two relays) is paid once. An
    error is never merged into text: it follows it as its own event."""
    held: GenerationEvent | None = None
    while True:
        event = held or await handle.events.get()
        held = None
        while not _final(event) and not handle.events.empty():
            following = handle.events.get_nowait()
            if following.error:
                held = following
                break
            event = GenerationEvent(text=event.text + following.text, tokens=event.tokens + following.tokens,
                                    finish_reason=following.finish_reason, prompt_tokens=following.prompt_tokens,
                                    completion_tokens=following.completion_tokens, fatal=following.fatal)
        yield event
        if _final(event):
            return


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
    hold = ToolCallHold(offers_tools(body))
    try:
        yield chunk(Delta(role="assistant", content=""))
        async for event in coalesced_events(handle):
            observer.saw(event)
            if event.error:
                yield f"data: {json.dumps(event_error(event).body())}\n\n"
                finished = True
                return
            text, tokens = hold.feed(event.text, event.tokens)
            if text or tokens:
                yield chunk(Delta(content=text), tokens=tokens)
            if event.finish_reason:
                finished = True
                text, tokens, calls = hold.finish()
                if calls:
                    yield chunk(Delta(tool_calls=calls), tokens=tokens)
                elif text or tokens:
                    yield chunk(Delta(content=text), tokens=tokens)
                yield chunk(Delta(), finish="tool_calls" if calls else event.finish_reason)
                if body.stream_options and body.stream_options.include_usage:
                    usage = Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens,
                                  total_tokens=event.prompt_tokens + event.completion_tokens)
                    yield chunk(Delta(), usage=usage, empty=True)
                yield "data: [DONE]\n\n"
                return
    finally:
        if not finished:
            handle.cancel()
