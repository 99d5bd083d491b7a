"""The router's cache against a real `tandem up` (in-process LRU, the default without Redis): a hit
costs no routing or generation, streams replay as SSE, and headers bypass it."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest


@pytest.fixture(scope="module")
def client(tandem_up):
    return openai.OpenAI(base_url=tandem_up.base_url, api_key="unused", max_retries=0, timeout=120)


def ask(client, text: str, **kw):
    return client.chat.completions.with_raw_response.create(
        model="tandem-base", messages=[{"role": "user", "content": text}], **{"max_tokens": 6, "temperature": 0, **kw})


def test_repeat_is_a_hit_with_the_same_answer_and_no_generation(client, tandem_up):
    text = f"Name one fruit. ({uuid.uuid4().hex[:8]})"
    first = ask(client, text)
    assert first.headers["x-tandem-cache"] == "miss"
    worker_requests = _worker_requests(tandem_up)
    started = time.perf_counter()
    second = ask(client, text)
    elapsed = time.perf_counter() - started
    assert second.headers["x-tandem-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().usage == first.parse().usage
    assert second.headers["x-tandem-request-id"] != first.headers["x-tandem-request-id"]
    assert _worker_requests(tandem_up) == worker_requests, "a hit must not reach the worker"
    assert elapsed < 1.0


def test_stream_replays_a_cached_answer_as_sse(client):
    text = f"Name one animal. ({uuid.uuid4().hex[:8]})"
    full = ask(client, text).parse().choices[0].message.content
    with httpx.stream("POST", f"{client.base_url}chat/completions", json={
            "model": "tandem-base", "messages": [{"role": "user", "content": text}], "max_tokens": 6,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}, timeout=60) as response:
        assert response.headers["x-tandem-cache"] == "hit"
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [openai.types.chat.ChatCompletionChunk.model_validate_json(line[6:]) for line in lines[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full
    assert chunks[-1].usage.completion_tokens > 0


def test_a_streamed_answer_is_stored_for_the_next_request(client):
    text = f"Name one city. ({uuid.uuid4().hex[:8]})"
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="tandem-base", messages=[{"role": "user", "content": text}], max_tokens=6, temperature=0, stream=True)
        if c.choices)
    again = ask(client, text)
    assert again.headers["x-tandem-cache"] == "hit"
    assert again.parse().choices[0].message.content == streamed


def test_no_cache_header_and_sampled_requests_bypass(client, tandem_up):
    text = f"Name one planet. ({uuid.uuid4().hex[:8]})"
    ask(client, text)
    fresh = ask(client, text, extra_headers={"Cache-Control": "no-cache"})
    assert fresh.headers["x-tandem-cache"] == "bypass"
    sampled = ask(client, text, temperature=0.9)
    assert sampled.headers["x-tandem-cache"] == "bypass"
    metrics = httpx.get(f"{tandem_up.url}/metrics").text
    assert 'tandem_cache_lookups_total{kind="exact",result="hit"}' in metrics
    assert 'tandem_cache_lookups_total{kind="exact",result="bypass"}' in metrics


def _worker_requests(tandem_up) -> float:
    text = httpx.get(f"{tandem_up.worker_url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tandem_requests_total{"))
