"""One chat request per item through the official `openai` client, with the facts we record.

`with_raw_response` gives us the `x-tandem-*` route headers alongside the parsed completion.
Retries are the client's own (connection errors, 429, 5xx); an error after them is recorded on
the item's row, not raised, so one bad item does not end a long run.
"""

from __future__ import annotations

import time
from typing import Any

import openai
from pydantic import BaseModel, Field

from tandem.eval.datasets import EvalItem
from tandem.eval.settings import Sampling


class Exchange(BaseModel):
    """The endpoint's answer to one item (cached, so a re-run can rescore without asking again)."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    route: dict[str, str] = Field(default_factory=dict)
    served_model: str | None = None
    error: str | None = None


def make_client(base_url: str, api_key: str, timeout_s: float) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=2)


def route_facts(headers: Any) -> dict[str, str]:
    return {
        k.lower().removeprefix("x-tandem-"): v
        for k, v in headers.items()
        if k.lower().startswith("x-tandem-")
    }


async def ask(client: openai.AsyncOpenAI, model: str, item: EvalItem, sampling: Sampling) -> Exchange:
    request: dict[str, Any] = {
        "model": model,
        "messages": item.messages,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
    }
    if sampling.seed is not None:
        request["seed"] = sampling.seed
    if item.tools:
        request["tools"] = item.tools
    started = time.perf_counter()
    try:
        raw = await client.chat.completions.with_raw_response.create(**request)
        completion = raw.parse()
    except openai.APIError as exc:
        return Exchange(latency_s=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - started
    choice = completion.choices[0]
    usage = completion.usage
    return Exchange(
        text=choice.message.content or "",
        tool_calls=[call.model_dump() for call in choice.message.tool_calls or []],
        finish_reason=choice.finish_reason,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        latency_s=latency,
        route=route_facts(raw.headers),
        served_model=completion.model,
    )
