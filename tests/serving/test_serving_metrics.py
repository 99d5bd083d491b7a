"""Metrics that tell the truth, on real processes: every response status is counted (errors raised
before any handler too), labels never carry the client's strings, `tandem_worker_up` follows a
background poll, readiness needs one live worker per model, and routing feedback counts once per
request id across router replicas sharing Redis."""

from __future__ import annotations

import os
import signal
import time

import httpx
import openai
import pytest

from tests.fallback.servers import RedisServer, shared_redis_url, start_service, stop_process
from tests.serving.metrics_helpers import label_values, sample

WORKER = {"slots": 1, "ctx_per_slot": 512, "max_queue": 8, "n_threads": 1}
ASK = [{"role": "user", "content": "Say hi."}]


def _router(workers: dict[str, str], **extra) -> tuple:
    settings = {"workers": [{"name": n, "url": u} for n, u in workers.items()], "model_refresh_s": 0.5, **extra}
    return start_service("tandem.services.router", settings)


def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def workers():
    procs = {}
    for name in ("base_a", "base_b"):
        procs[name] = start_service("tandem.services.base_model", {"service_name": name, **WORKER})
    yield procs
    for proc, _ in procs.values():
        stop_process(proc)


@pytest.fixture(scope="module")
def redis_url():
    url = shared_redis_url()
    if url:
        yield url
        return
    server = RedisServer().start()
    yield server.url
    server.stop()


def test_every_response_status_is_counted_with_bounded_labels(workers):
    proc, url = _router({"base_a": workers["base_a"][1]})
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        client.chat.completions.create(model="tandem-base", messages=ASK, max_tokens=2)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no-such-model-x1", messages=ASK, max_tokens=2)
        malformed = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", timeout=10,
                               headers={"content-type": "application/json"})
        assert malformed.status_code == 400 and "error" in malformed.json()
        assert httpx.get(f"{url}/v1/no/such/path", timeout=10).status_code == 404

        chat = "/v1/chat/completions"
        assert sample(url, "tandem_http_responses_total", service="router", handler=chat, status="200") == 1
        assert sample(url, "tandem_http_responses_total", service="router", handler=chat, status="404") == 1
        assert sample(url, "tandem_http_responses_total", service="router", handler=chat, status="400") == 1
        assert sample(url, "tandem_http_responses_total", service="router", handler="unmatched", status="404") == 1
        assert "/v1/no/such/path" not in label_values(url, "tandem_http_responses_total", "handler")

        # The worker counts an unknown model as "unknown", never under the client's string.
        direct = httpx.post(f"{workers['base_a'][1]}/v1/chat/completions", timeout=10,
                            json={"model": "client-chosen-name", "messages": ASK})
        assert direct.status_code == 404
        routes = label_values(workers["base_a"][1], "tandem_requests_total", "route")
        assert "unknown" in routes and "client-chosen-name" not in routes
    finally:
        stop_process(proc)


def test_worker_up_follows_a_background_poll_and_readiness_needs_one_worker_per_model(workers):
    proc, url = _router({"base_a": workers["base_a"][1], "base_b": workers["base_b"][1]})
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    b_port = int(workers["base_b"][1].rsplit(":", 1)[1])
    a_port = int(workers["base_a"][1].rsplit(":", 1)[1])
    try:
        assert sample(url, "tandem_worker_up", worker="base_a") == 1
        assert sample(url, "tandem_worker_up", worker="base_b") == 1

        os.kill(workers["base_b"][0].pid, signal.SIGKILL)
        workers["base_b"][0].wait()
        # Nobody calls /ready here: the poll alone must bring the gauge to 0.
        _wait(lambda: sample(url, "tandem_worker_up", worker="base_b") == 0)
        assert httpx.get(f"{url}/ready", timeout=10).status_code == 200  # base_a still serves tandem-base
        reply = client.chat.completions.create(model="tandem-base", messages=ASK, max_tokens=2)
        assert reply.choices[0].message.content is not None

        os.kill(workers["base_a"][0].pid, signal.SIGKILL)
        workers["base_a"][0].wait()
        _wait(lambda: sample(url, "tandem_worker_up", worker="base_a") == 0)
        ready = httpx.get(f"{url}/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["unserved_models"] == ["tandem-base"]
        down = httpx.post(f"{url}/v1/chat/completions", json={"model": "tandem-base", "messages": ASK}, timeout=10)
        assert down.status_code == 503 and down.headers["retry-after"]
        assert down.json()["error"]["code"] == "overloaded"
        assert sample(url, "tandem_http_responses_total", handler="/v1/chat/completions", status="503") == 1

        workers["base_a"] = start_service("tandem.services.base_model", {"service_name": "base_a", **WORKER},
                                          port=a_port)
        _wait(lambda: sample(url, "tandem_worker_up", worker="base_a") == 1, timeout=60)
        _wait(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 200)
        workers["base_b"] = start_service("tandem.services.base_model", {"service_name": "base_b", **WORKER},
                                          port=b_port)
    finally:
        stop_process(proc)


def test_feedback_counts_once_per_request_across_replicas_sharing_redis(workers, redis_url):
    worker = {"base_a": workers["base_a"][1]}
    shared = {"feedback": {"redis_url": redis_url}}
    (proc_1, url_1), (proc_2, url_2) = _router(worker, **shared), _router(worker, **shared)
    try:
        client = openai.OpenAI(base_url=f"{url_1}/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=ASK, max_tokens=2,
                                                               extra_headers={"Cache-Control": "no-cache"})
        request_id, predicted = raw.headers["x-tandem-request-id"], raw.headers["x-tandem-domain"]
        wrong = next(d for d in ("code", "general") if d != predicted)

        # Replica 2 never saw the request: it finds the decision in Redis.
        first = httpx.post(f"{url_2}/v1/feedback", json={"request_id": request_id, "correct_domain": wrong}, timeout=10)
        assert first.status_code == 200, first.text
        assert first.json() == {"request_id": request_id, "predicted_domain": predicted, "correct": False,
                                "counted": ["domain"]}
        # The same feedback again, on either replica, is refused and not counted.
        for url in (url_1, url_2):
            again = httpx.post(f"{url}/v1/feedback", json={"request_id": request_id, "correct_domain": wrong},
                               timeout=10)
            assert again.status_code == 409 and again.json()["error"]["code"] == "feedback_already_counted"
        # A rating is another kind: counted once too.
        rated = httpx.post(f"{url_1}/v1/feedback", json={"request_id": request_id, "rating": 1,
                                                          "correct_domain": wrong}, timeout=10)
        assert rated.status_code == 200 and rated.json()["counted"] == ["rating"]

        total = sum(sample(u, "tandem_routing_feedback_total", correct="false") or 0 for u in (url_1, url_2))
        assert total == 1
        assert sample(url_2, "tandem_routing_feedback_total", predicted=predicted, actual=wrong) == 1
        assert sum(sample(u, "tandem_feedback_ratings_total") or 0 for u in (url_1, url_2)) == 1
        # Every (predicted, actual) series exists from the start, so rates see the first feedback.
        assert sample(url_1, "tandem_routing_feedback_total", predicted="code", actual="code") == 0

        unknown = httpx.post(f"{url_1}/v1/feedback", json={"request_id": "req-never", "rating": 1}, timeout=10)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_request"
        empty = httpx.post(f"{url_1}/v1/feedback", json={"request_id": request_id}, timeout=10)
        assert empty.status_code == 400 and "correct_domain" in empty.json()["error"]["message"]
    finally:
        stop_process(proc_1)
        stop_process(proc_2)


def test_feedback_without_redis_counts_once_in_process(workers):
    proc, url = _router({"base_a": workers["base_a"][1]})
    try:
        response = httpx.post(f"{url}/v1/chat/completions", timeout=60, headers={"Cache-Control": "no-cache"},
                              json={"model": "auto", "messages": ASK, "max_tokens": 2})
        request_id = response.headers["x-tandem-request-id"]
        body = {"request_id": request_id, "correct_domain": response.headers["x-tandem-domain"]}
        assert httpx.post(f"{url}/v1/feedback", json=body, timeout=10).json()["correct"] is True
        assert httpx.post(f"{url}/v1/feedback", json=body, timeout=10).status_code == 409
        assert sample(url, "tandem_routing_feedback_total", correct="true") == 1
    finally:
        stop_process(proc)
