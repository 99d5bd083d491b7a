"""The fallback service against a real upstream (a base_model process playing the frontier model)
through a fault-injecting proxy: pass-through, streams, cost, retries, timeouts, circuit, budget."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest
import redis

from tandem.services.fallback.budget import KEY_PREFIX, today
from tests.fallback.servers import start_service, stop_process

ASK = {"messages": [{"role": "user", "content": "Name a color."}], "max_tokens": 4, "temperature": 0}


def fallback_settings(proxy, redis_url: str, **overrides) -> dict:
    return {"upstream_base_url": proxy.url, "model_map": {"gpt-4o": "tandem-base"}, "redis_url": redis_url,
            "daily_budget_usd": 5.0, "request_timeout_s": 120.0, "max_retries": 2, "backoff_base_s": 0.05,
            "circuit_failures": 2, "circuit_open_s": 2.0, "api_key_env": f"TANDEM_TEST_KEY_{uuid.uuid4().hex}",
            **overrides}


@pytest.fixture(scope="module")
def fallback(proxy, redis_url):
    proc, url = start_service("tandem.services.fallback", fallback_settings(proxy, redis_url))
    yield url
    stop_process(proc)


@pytest.fixture(scope="module")
def client(fallback):
    return openai.OpenAI(base_url=f"{fallback}/v1", api_key="unused", max_retries=0, timeout=180)


def metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_models_are_the_model_map(client):
    assert [m.id for m in client.models.list().data] == ["gpt-4o"]


def test_answer_passes_through_with_our_model_name_and_is_charged(client, fallback):
    before = httpx.get(f"{fallback}/v1/budget").json()["spent_usd"]
    completion = client.chat.completions.create(model="gpt-4o", **ASK)
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content
    expected = (completion.usage.prompt_tokens * 2.5 + completion.usage.completion_tokens * 10.0) / 1e6
    spent = httpx.get(f"{fallback}/v1/budget").json()["spent_usd"] - before
    assert spent == pytest.approx(expected, rel=1e-6)
    assert metric(fallback, "tandem_fallback_spend_usd_total") >= expected


def test_stream_passes_through_and_usage_only_when_asked(client, fallback):
    full = client.chat.completions.create(model="gpt-4o", **ASK).choices[0].message.content
    chunks = list(client.chat.completions.create(model="gpt-4o", stream=True, **ASK))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == full
    assert all(c.usage is None for c in chunks), "usage was not asked for"
    with_usage = list(client.chat.completions.create(model="gpt-4o", stream=True,
                                                     stream_options={"include_usage": True}, **ASK))
    assert with_usage[-1].usage.completion_tokens > 0


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5", **ASK)


def test_429s_are_retried_with_backoff(client, proxy, fallback):
    retries = metric(fallback, "tandem_fallback_retries_total")
    proxy.faults.status_429 = 2
    completion = client.chat.completions.create(model="gpt-4o", **ASK)
    assert completion.choices[0].message.content
    assert metric(fallback, "tandem_fallback_retries_total") == retries + 2


def test_slow_upstream_times_out_with_a_reason(proxy, redis_url):
    proc, impatient = start_service("tandem.services.fallback",
                                    fallback_settings(proxy, redis_url, request_timeout_s=2.0))
    proxy.faults.delay_s = 6.0
    try:
        started = time.monotonic()
        response = httpx.post(f"{impatient}/v1/chat/completions", json={"model": "gpt-4o", **ASK}, timeout=30)
        assert time.monotonic() - started < 6.0
    finally:
        proxy.faults.delay_s = 0.0
        stop_process(proc)
    assert response.status_code == 504
    assert response.headers["x-tandem-fallback-refused"] == "upstream_timeout"
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_budget_spent_refuses_with_a_reason(fallback, redis_url):
    store = redis.Redis.from_url(redis_url)
    key = KEY_PREFIX + today()
    saved = store.get(key)
    store.set(key, 1000.0)
    try:
        response = httpx.post(f"{fallback}/v1/chat/completions", json={"model": "gpt-4o", **ASK}, timeout=30)
        assert response.status_code == 429
        assert response.headers["x-tandem-fallback-refused"] == "budget_exhausted"
        assert metric(fallback, 'tandem_fallback_refusals_total{reason="budget_exhausted"}') >= 1
    finally:
        store.set(key, saved or 0.0)


def test_upstream_down_opens_the_circuit_then_recovers(fallback, proxy):
    proxy.down()
    try:
        reasons = []
        for _ in range(3):
            response = httpx.post(f"{fallback}/v1/chat/completions", json={"model": "gpt-4o", **ASK}, timeout=30)
            reasons.append(response.headers.get("x-tandem-fallback-refused"))
        assert reasons == ["upstream_unavailable", "upstream_unavailable", "circuit_open"]
        assert metric(fallback, "tandem_fallback_circuit_state") == 2
    finally:
        proxy.up()
    time.sleep(2.1)  # the circuit half-opens; one trial call closes it
    response = httpx.post(f"{fallback}/v1/chat/completions", json={"model": "gpt-4o", **ASK}, timeout=180)
    assert response.status_code == 200
    assert metric(fallback, "tandem_fallback_circuit_state") == 0
