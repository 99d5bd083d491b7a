"""Who may use the gateway, how often, and with how big a body: API keys (401), rate limits (429,
per validated key or client address, shared through Redis), body limits (413, chunked too), and
routing feedback. Real router processes over HTTP, with the `openai` client where it fits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import openai
import pytest

from tests.fallback.servers import RedisServer, start_service, stop_process
from tests.gateway.test_gateway_errors import assert_openai_error

KEYS = ["key-alpha-0123456789", "key-beta-0123456789"]


def _router(tandem_up, settings: dict, env: dict[str, str] | None = None):
    return start_service("tandem.services.router", {"workers": [{"name": "base_model", "url": tandem_up.worker_url}],
                                                    **settings}, env={**tandem_up.internal_env, **(env or {})})


@pytest.fixture(scope="module")
def keyed_router(tandem_up):
    """API keys from the environment (never the command line), 3 requests a minute per key."""
    proc, url = _router(tandem_up, {"rate_limit_per_minute": 3},
                        env={"TANDEM_ROUTER_API_KEYS": json.dumps(KEYS)})
    yield proc, url
    stop_process(proc)


def test_wrong_or_missing_key_is_401(keyed_router):
    proc, url = keyed_router
    with pytest.raises(openai.AuthenticationError) as err:
        openai.OpenAI(base_url=f"{url}/v1", api_key="key-alpha-0123456788", max_retries=0).models.list()
    assert err.value.status_code == 401
    assert err.value.body["code"] == "invalid_api_key"
    assert_openai_error(httpx.get(f"{url}/v1/models"), 401, "invalid_api_key")
    assert_openai_error(httpx.get(f"{url}/v1/models", headers={"authorization": "Basic eHg6eXk="}), 401)
    models = openai.OpenAI(base_url=f"{url}/v1", api_key=KEYS[1], max_retries=0).models.list()
    assert "tandem-base" in {m.id for m in models.data}
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    assert not any(key.encode() in cmdline for key in KEYS), "API keys must not be visible on the command line"


def test_rate_limit_is_per_validated_key_with_retry_after(keyed_router):
    _, url = keyed_router
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEYS[0], max_retries=0)
    for _ in range(3):
        client.models.list()
    with pytest.raises(openai.RateLimitError) as err:
        client.models.list()
    assert err.value.status_code == 429
    assert err.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 61
    # Another valid key has its own window (KEYS[1] was used once, above); invalid keys are refused
    # before they count.
    assert_openai_error(httpx.get(f"{url}/v1/models", headers={"authorization": "Bearer nope"}), 401)
    assert httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {KEYS[1]}"}).status_code == 200


def test_without_auth_the_limit_follows_the_client_address(tandem_up):
    proc, url = _router(tandem_up, {"rate_limit_per_minute": 2})
    try:
        statuses = [httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer rotating-{i}"}).status_code
                    for i in range(4)]
        assert statuses == [200, 200, 429, 429], "a new bearer string each time must not reset the limit"
    finally:
        stop_process(proc)


def test_replicas_share_the_limit_through_redis_and_survive_its_loss(tandem_up):
    server = RedisServer().start()
    procs = []
    try:
        for _ in range(2):
            procs.append(_router(tandem_up, {"rate_limit_per_minute": 4, "rate_limit_redis_url": server.url}))
        (_, first), (_, second) = procs
        statuses = [httpx.get(f"{url}/v1/models").status_code for url in (first, second, first, second, first)]
        assert statuses == [200, 200, 200, 200, 429], statuses
        server.stop()  # Redis gone: each replica counts alone (its own window is empty), never a 5xx
        later = [httpx.get(f"{second}/v1/models", timeout=10).status_code for _ in range(5)]
        assert later == [200, 200, 200, 200, 429], later
    finally:
        for proc, _ in procs:
            stop_process(proc)
        server.stop()


def _chunked(total: int, piece: int = 64 * 1024):
    sent = 0
    yield b'{"model": "tandem-base", "messages": [{"role": "user", "content": "'
    while sent < total:
        yield b"x" * min(piece, total - sent)
        sent += piece
    yield b'"}], "max_tokens": 1}'


def test_body_limit_holds_for_declared_and_chunked_bodies(tandem_up):
    proc, url = _router(tandem_up, {"max_body_bytes": 4096})
    try:
        declared = httpx.post(f"{url}/v1/chat/completions", content=b"x" * 5000,
                              headers={"content-type": "application/json"})
        assert_openai_error(declared, 413, "request_too_large")
        chunked = httpx.post(f"{url}/v1/chat/completions", content=_chunked(10_000),
                             headers={"content-type": "application/json"})
        assert chunked.request.headers.get("transfer-encoding") == "chunked"
        assert_openai_error(chunked, 413, "request_too_large")
        small = httpx.post(f"{url}/v1/chat/completions", content=_chunked(100), timeout=120,
                           headers={"content-type": "application/json"})
        assert small.status_code == 200, small.text
    finally:
        stop_process(proc)


def test_workers_limit_bodies_too(tandem_up):
    response = httpx.post(f"{tandem_up.worker_url}/v1/chat/completions", content=_chunked(8_100_000), timeout=60,
                          headers={"content-type": "application/json", **tandem_up.internal_headers})
    assert_openai_error(response, 413, "request_too_large")


def test_feedback_needs_a_known_request_and_domain(tandem_up):
    client = openai.OpenAI(base_url=tandem_up.base_url, api_key="unused", max_retries=0, timeout=120)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", max_tokens=1, temperature=0, messages=[{"role": "user", "content": f"Sort a list {os.getpid()}"}])
    request_id = raw.headers["x-tandem-request-id"]
    unknown = httpx.post(f"{tandem_up.url}/v1/feedback", json={"request_id": "req-nope", "rating": 1})
    assert_openai_error(unknown, 404, "unknown_request")
    bad_domain = httpx.post(f"{tandem_up.url}/v1/feedback", json={"request_id": request_id, "correct_domain": "x"})
    assert_openai_error(bad_domain, 400)
    malformed = httpx.post(f"{tandem_up.url}/v1/feedback", json={"request_id": request_id, "rating": "great"})
    assert_openai_error(malformed, 400)
    ok = httpx.post(f"{tandem_up.url}/v1/feedback", json={"request_id": request_id,
                                                        "correct_domain": raw.headers["x-tandem-domain"]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["correct"] is True
