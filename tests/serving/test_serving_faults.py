"""Faults a user relies on being handled: full queues, dead or slow workers, shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from tests.conftest import free_port, start_tandem_up, stop_tandem_up, wait_for

LONG = {"model": "tandem-base", "messages": [{"role": "user", "content": "Write a long essay about rivers."}],
        "max_tokens": 400, "temperature": 0.7}


def _service(module: str, settings: dict, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), "--settings", json.dumps(settings),
                             "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/ready", proc=proc, timeout=120)
    return proc, url


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_full_queue_answers_503_with_retry_after():
    proc, url = _service("tandem.services.base_model", {"slots": 1, "max_queue": 1, "service_name": "base_model"})
    try:
        background = [threading.Thread(target=httpx.post, args=(f"{url}/v1/chat/completions",),
                                       kwargs={"json": LONG, "timeout": 300}, daemon=True) for _ in range(2)]
        background[0].start()
        _wait_until(lambda: httpx.get(f"{url}/ready").json()["active"] == 1)
        background[1].start()
        _wait_until(lambda: httpx.get(f"{url}/ready").json()["waiting"] == 1)
        response = httpx.post(f"{url}/v1/chat/completions", json=LONG, timeout=30)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "overloaded"
        # The running request was not interrupted by the rejected one.
        assert httpx.get(f"{url}/ready").json()["active"] == 1
    finally:
        _stop(proc)


def test_router_answers_503_when_no_worker_is_up():
    dead = f"http://127.0.0.1:{free_port()}"
    proc, url = None, None
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tandem.services.router", "--port", str(port), "--settings",
                             json.dumps({"workers": [{"name": "base_model", "url": dead}]}), "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", proc=proc, timeout=60)
        assert httpx.get(f"{url}/ready").status_code == 503
        for model in ("tandem-base", "auto"):
            response = httpx.post(f"{url}/v1/chat/completions", json={**LONG, "model": model}, timeout=30)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] == "overloaded_error"
            assert "retry-after" in response.headers
    finally:
        _stop(proc)


def test_router_answers_504_when_the_worker_is_too_slow(tandem_up):
    proc, url = _service("tandem.services.router", {
        "workers": [{"name": "base_model", "url": tandem_up.worker_url}], "request_timeout_s": 0.3},
        env=tandem_up.internal_env)
    try:
        response = httpx.post(f"{url}/v1/chat/completions", json={**LONG, "max_tokens": 300}, timeout=60)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def private_tandem(tmp_path_factory):
    running = start_tandem_up(tmp_path_factory.mktemp("faults"))
    yield running
    stop_tandem_up(running)


def test_dead_worker_gives_503_then_is_restarted(private_tandem):
    client = openai.OpenAI(base_url=private_tandem.base_url, api_key="x", max_retries=0, timeout=60)
    worker_pid = httpx.get(f"{private_tandem.worker_url}/ready").json()["pid"]
    os.kill(worker_pid, signal.SIGKILL)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="tandem-base", messages=LONG["messages"], max_tokens=4)
    assert err.value.status_code == 503
    _wait_until(lambda: _ready_pid(private_tandem.worker_url) not in (None, worker_pid), timeout=120)
    completion = client.chat.completions.create(model="tandem-base", messages=LONG["messages"], max_tokens=4,
                                                temperature=0)
    assert completion.choices[0].message.content


def test_sigterm_stops_every_service_leaving_no_orphans(tmp_path):
    running = start_tandem_up(tmp_path)
    pids = [httpx.get(f"{running.worker_url}/ready").json()["pid"], httpx.get(f"{running.url}/ready").json()["pid"]]
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(timeout=60) == 0
    for pid in pids:
        _wait_until(lambda: not _alive(pid), timeout=15)


def _ready_pid(url: str) -> int | None:
    try:
        response = httpx.get(f"{url}/ready", timeout=2)
        return response.json().get("pid") if response.status_code == 200 else None
    except httpx.HTTPError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is not running
        return fh.read().split()[2] != "Z"
