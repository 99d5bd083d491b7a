"""Legacy `/v1/completions` on a worker: the raw prompt is generated from as is (no chat template)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import Request

from tandem.common.legacy_wire import CompletionChoice, CompletionRequest, CompletionResponse, new_legacy_id
from tandem.common.wire import Usage
from tandem.services.engine.batched import GenerationEvent, GenerationHandle
from tandem.services.worker.generation import (
    CompletionObserver,
    coalesced_events,
    collect_events,
    event_error,
)


def _usage(event: GenerationEvent) -> Usage:
    return Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens,
                 total_tokens=event.prompt_tokens + event.completion_tokens)


async def complete_text(handle: GenerationHandle, body: CompletionRequest, request: Request,
                        observer: CompletionObserver) -> CompletionResponse:
    events = await collect_events(handle, request, observer)
    event = events[-1]
    parts = [e.text for e in events]
    return CompletionResponse(model=body.model, usage=_usage(event),
                              choices=[CompletionChoice(text="".join(parts), finish_reason=event.finish_reason)])


async def stream_text(handle: GenerationHandle, body: CompletionRequest,
                      observer: CompletionObserver) -> AsyncIterator[str]:
    """SSE `text_completion` chunks; closing the generator (client disconnect) cancels the generation."""
    completion_id, created = new_legacy_id(), int(time.time())

    def chunk(text: str, finish: str | None = None, usage: Usage | None = None, empty: bool = False) -> str:
        choices = [] if empty else [CompletionChoice(text=text, finish_reason=finish)]
        payload = CompletionResponse(id=completion_id, created=created, model=body.model, choices=choices, usage=usage)
        return f"data: {payload.model_dump_json(exclude_none=True)}\n\n"

    finished = False
    try:
        async for event in coalesced_events(handle):
            observer.saw(event)
            if event.error:
                finished = True
                yield f"data: {json.dumps(event_error(event).body())}\n\n"
                return
            if event.text:
                yield chunk(event.text)
            if event.finish_reason:
                finished = True
                yield chunk("", finish=event.finish_reason)
                if body.stream_options and body.stream_options.include_usage:
                    yield chunk("", usage=_usage(event), empty=True)
                yield "data: [DONE]\n\n"
                return
    finally:
        if not finished:
            handle.cancel()
