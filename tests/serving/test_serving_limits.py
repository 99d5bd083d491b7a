"""The router's bounds: requests waiting beyond `max_waiting_requests` get 503 at once, and a request
past its `request_deadline_s` gets 504 (a stream: an error event), both with Retry-After."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from tests.fallback.servers import start_service, stop_process

LONG = {"model": "tandem-base", "messages": [{"role": "user", "content": "Write a long essay about rivers."}],
        "max_tokens": 300, "temperature": 0.7}  # sampled: never a cache hit


@pytest.fixture
def router(tandem_up, request):
    proc, url = start_service("tandem.services.router", {
        "workers": [{"name": "base_model", "url": tandem_up.worker_url}], **request.param}, env=tandem_up.internal_env)
    yield url
    stop_process(proc)


@pytest.mark.parametrize("router", [{"max_waiting_requests": 1}], indirect=True)
def test_beyond_the_waiting_bound_is_503_at_once(router):
    first = threading.Thread(target=httpx.post, args=(f"{router}/v1/chat/completions",),
                             kwargs={"json": {**LONG, "max_tokens": 60}, "timeout": 120}, daemon=True)
    first.start()
    time.sleep(0.5)  # the first request is waiting for its answer
    started = time.monotonic()
    response = httpx.post(f"{router}/v1/chat/completions", json=LONG, timeout=60)
    assert time.monotonic() - started < 2
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "router_busy"
    assert response.headers["retry-after"] == "1"
    first.join(timeout=120)
    assert httpx.post(f"{router}/v1/chat/completions", json={**LONG, "max_tokens": 2}, timeout=60).status_code == 200


@pytest.mark.parametrize("router", [{"request_deadline_s": 1.5}], indirect=True)
def test_past_the_deadline_is_504_with_retry_after(router, tandem_up):
    started = time.monotonic()
    response = httpx.post(f"{router}/v1/chat/completions", json=LONG, timeout=60)
    assert time.monotonic() - started < 4
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert response.headers["retry-after"] == "2"
    assert response.headers["x-tandem-route"] == "tandem-base"
    # The router hung up on the worker, which cancels the generation (and answers 499 to nobody).
    # The slot is freed a moment before the worker's handler records the 499, so wait for both.
    deadline = time.monotonic() + 30
    while (httpx.get(f"{tandem_up.worker_url}/ready", headers=tandem_up.internal_headers).json()["active"]
           or 'status="499"' not in httpx.get(f"{tandem_up.worker_url}/metrics", headers=tandem_up.internal_headers).text):
        assert time.monotonic() < deadline, "the abandoned generation still holds its slot, or was not counted as 499"
        time.sleep(0.2)


@pytest.mark.parametrize("router", [{"request_deadline_s": 1.5}], indirect=True)
def test_a_stream_past_the_deadline_ends_with_an_error_event(router):
    started = time.monotonic()
    with httpx.stream("POST", f"{router}/v1/chat/completions", json={**LONG, "stream": True}, timeout=60) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert time.monotonic() - started < 4
    assert json.loads(events[-1])["error"]["code"] == "deadline_exceeded"
    assert "[DONE]" not in events
