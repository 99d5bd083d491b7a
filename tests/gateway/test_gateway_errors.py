"""Failures that used to leave a service as a plain-text 500 now answer in OpenAI's error shape,
against real processes: a lone surrogate, a worker or upstream that answers garbage, a corrupt
cache entry, the budget while Redis is down. And a logged failure does not quote the prompt."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import redis

from tests.conftest import free_port, wait_for
from tests.fallback.servers import RedisServer, start_service, stop_process
from tests.gateway.servers import BrokenServer

CHAT = {"model": "tandem-base", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2,
        "temperature": 0}


def assert_openai_error(response: httpx.Response, status: int | tuple[int, ...], code: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def test_lone_surrogate_is_a_400_on_router_and_worker(tandem_up):
    raw = b'{"model": "tandem-base", "max_tokens": 1, "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    for url, headers in ((tandem_up.url, {}), (tandem_up.worker_url, tandem_up.internal_headers)):
        response = httpx.post(f"{url}/v1/chat/completions", content=raw, timeout=60,
                              headers={"content-type": "application/json", **headers})
        error = assert_openai_error(response, 400, "invalid_unicode")
        assert "surrogate" in error["message"]
    # A valid pair (an escaped emoji) is text like any other.
    paired = raw.replace(b"\\ud800", b"\\ud83d\\ude00")
    ok = httpx.post(f"{tandem_up.url}/v1/chat/completions", content=paired, timeout=120,
                    headers={"content-type": "application/json"})
    assert ok.status_code == 200, ok.text


def test_non_json_worker_reply_is_an_openai_error(tmp_path):
    marker = f"secret-prompt-{uuid.uuid4().hex}"
    with BrokenServer(b"<html>not json</html>") as worker:
        port = free_port()
        log_path = tmp_path / "router.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tandem.services.router", "--port", str(port),
                                     "--settings", json.dumps({"workers": [{"name": "base_model", "url": worker.url}],
                                                               "cache": {"enabled": False}}),
                                     "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(f"http://127.0.0.1:{port}/ready", proc=proc, timeout=60)
            response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                                  json={**CHAT, "messages": [{"role": "user", "content": marker}]})
            assert_openai_error(response, (500, 502))
            assert response.headers["x-tandem-request-id"].startswith("req-")
            assert worker.chat_calls == 1
        finally:
            stop_process(proc)
    assert marker not in log_path.read_text(), "the prompt must not reach the log"


def test_corrupt_cache_entry_is_a_miss(tandem_up):
    server = RedisServer().start()
    proc = None
    try:
        proc, url = start_service("tandem.services.router", {
            "workers": [{"name": "base_model", "url": tandem_up.worker_url}],
            "cache": {"redis_url": server.url}}, env=tandem_up.internal_env)
        body = {**CHAT, "messages": [{"role": "user", "content": f"Cache me {uuid.uuid4().hex}"}]}
        first = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        assert first.status_code == 200 and first.headers["x-tandem-cache"] == "miss"
        assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).headers["x-tandem-cache"] == "hit"
        store = redis.Redis(port=server.port)
        keys = store.keys("tandem:cache:*")
        assert keys
        for key in keys:
            store.set(key, b"\x00garbage{")
        again = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
        assert again.status_code == 200, again.text
        assert again.headers["x-tandem-cache"] == "miss"
        assert again.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
        metrics = httpx.get(f"{url}/metrics").text
        assert 'tandem_cache_errors_total{op="decode"} 1.0' in metrics
    finally:
        if proc is not None:
            stop_process(proc)
        server.stop()


def test_budget_while_redis_is_down_is_a_503():
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    proc, url = start_service("tandem.services.fallback", {"upstream_base_url": "http://127.0.0.1:9/v1",
                                                           "redis_url": dead_redis})
    try:
        assert_openai_error(httpx.get(f"{url}/v1/budget", timeout=10), 503, "budget_unavailable")
        chat = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "gpt-4o"}, timeout=10)
        assert_openai_error(chat, 503, "budget_unavailable")
    finally:
        stop_process(proc)


def test_non_json_upstream_reply_is_a_502():
    with BrokenServer(b"<html>gateway page</html>", models=("gpt-4o",)) as upstream:
        proc, url = start_service("tandem.services.fallback", {"upstream_base_url": f"{upstream.url}/v1",
                                                               "max_retries": 0})
        try:
            response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "gpt-4o"}, timeout=30)
            assert_openai_error(response, 502, "upstream_error")
        finally:
            stop_process(proc)


def test_non_json_upstream_error_is_wrapped_in_the_openai_shape():
    with BrokenServer(b"<html>bad request</html>", status=400, models=("gpt-4o",)) as upstream:
        proc, url = start_service("tandem.services.fallback", {"upstream_base_url": f"{upstream.url}/v1"})
        try:
            response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "gpt-4o"}, timeout=30)
            error = assert_openai_error(response, 400, "upstream_error")
            assert "bad request" in error["message"]
        finally:
            stop_process(proc)


def test_unsupported_or_loosely_typed_parameters_are_clear_400s(tandem_up):
    image = [{"type": "text", "text": "What is this?"},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    cases = [
        ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": image}]}, "image_url"),
        ("/v1/chat/completions", {**CHAT, "n": 2}, "n"),
        ("/v1/chat/completions", {**CHAT, "stop": [""]}, "stop"),
        ("/v1/chat/completions", {**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ("/v1/chat/completions", {**CHAT, "temperature": "0.5"}, "temperature"),
        ("/v1/chat/completions", {**CHAT, "stream": 1}, "stream"),
        ("/v1/route", {**CHAT, "frequency_penalty": False}, "frequency_penalty"),
        ("/v1/route", {**CHAT, "max_tokens": 1.5}, "max_tokens"),
    ]
    for path, body, named in cases:
        error = assert_openai_error(httpx.post(f"{tandem_up.url}{path}", json=body, timeout=30), 400)
        assert named in error["message"] or named == error["param"], (body, error)
    # The OpenAPI document says so too: a client generator or fuzzer sees the same constraints.
    schema = httpx.get(f"{tandem_up.url}/openapi.json").json()
    request = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    stop_variants = request["stop"]["anyOf"]
    assert {"type": "string", "minLength": 1} in stop_variants
    assert any(v.get("type") == "array" and v["items"].get("minLength") == 1 and v.get("maxItems") == 4
               for v in stop_variants)
    assert request["n"]["maximum"] == 1
    chat = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "404", "413", "429", "503", "504"} <= set(chat) and "422" not in chat
    assert chat["429"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorResponse"
