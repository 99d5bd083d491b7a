"""Streamed tool calls are cached as tool calls: a later non-streamed caller gets `tool_calls`, from a
worker's stream (through `tandem up`) and from the fallback's relayed stream of a frontier upstream."""

from __future__ import annotations

import json
import uuid

import openai
import pytest

from tests.fallback.conftest import frontier, proxy  # noqa: F401  (the frontier upstream behind a fault proxy)
from tests.fallback.servers import start_service, stop_process

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _forced_call(client, model: str, text: str, stream: bool):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], tools=[WEATHER], tool_choice="required",
        max_tokens=48, temperature=0, stream=stream)


def _streamed_then_plain(client, model: str) -> tuple[list, object, str]:
    text = f"Weather in Lisbon? ({uuid.uuid4().hex[:8]})"
    streamed = _forced_call(client, model, text, stream=True)
    assert streamed.headers["x-tandem-cache"] == "miss"
    chunks = list(streamed.parse())
    parts = [p for c in chunks if c.choices for p in (c.choices[0].delta.tool_calls or [])]
    plain = _forced_call(client, model, text, stream=False)
    return parts, plain.parse(), plain.headers["x-tandem-cache"]


def test_a_worker_stream_with_a_tool_call_is_served_from_the_cache_as_a_tool_call(tandem_up):
    client = openai.OpenAI(base_url=tandem_up.base_url, api_key="unused", max_retries=0, timeout=120)
    parts, plain, cache = _streamed_then_plain(client, "tandem-base")
    assert parts and parts[0].function.name == "get_weather"
    assert cache == "hit"
    message = plain.choices[0].message
    assert plain.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert message.tool_calls[0].function.name == "get_weather"
    assert message.tool_calls[0].id == parts[0].id
    assert json.loads(message.tool_calls[0].function.arguments) == json.loads(parts[0].function.arguments)


@pytest.fixture(scope="module")
def escalating_router(frontier, proxy):  # noqa: F811
    fallback_proc, fallback_url = start_service("tandem.services.fallback", {
        "upstream_base_url": proxy.url, "model_map": {"gpt-4o": "tandem-base"}, "daily_budget_usd": 5.0,
        "api_key_env": f"TANDEM_TEST_KEY_{uuid.uuid4().hex}"})
    router_proc, router_url = start_service("tandem.services.router", {
        "workers": [{"name": "base_model", "url": frontier}], "escalation": {"fallback_url": fallback_url}})
    yield router_url
    stop_process(router_proc)
    stop_process(fallback_proc)


def test_a_relayed_upstream_stream_with_a_tool_call_is_cached_as_a_tool_call(escalating_router):
    client = openai.OpenAI(base_url=f"{escalating_router}/v1", api_key="unused", max_retries=0, timeout=120)
    parts, plain, cache = _streamed_then_plain(client, "gpt-4o")
    assert parts and parts[0].function.name == "get_weather"
    assert cache == "hit"
    assert plain.choices[0].finish_reason == "tool_calls"
    assert plain.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert plain.model == "gpt-4o"
