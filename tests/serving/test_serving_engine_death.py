"""A worker whose engine thread dies: every request it holds gets a quick 503 in the OpenAI shape (not a
hang until the router's timeout), /ready says so, and the process exits non-zero for its supervisor to
restart it. The fault is real: the engine's `_admit` raises, injected by a tests-only setting."""

from __future__ import annotations

import json
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


def test_dead_engine_fails_fast_turns_unready_and_exits_for_a_restart():
    port = free_port()
    settings = {"slots": 2, "max_queue": 4, "engine_fault_after_admits": 1}
    proc = subprocess.Popen([sys.executable, "-m", "tandem.services.base_model", "--port", str(port),
                             "--settings", json.dumps(settings), "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", proc=proc, timeout=120)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=60)
        stream_outcome: dict = {}

        def read_stream() -> None:  # the in-flight request: admitted (the one admission allowed)
            try:
                for chunk in client.chat.completions.create(stream=True, **LONG):
                    stream_outcome.setdefault("first_chunk", chunk)
                stream_outcome["ended"] = "finished without an error"
            except openai.APIError as exc:
                stream_outcome["ended"] = exc
                stream_outcome["at"] = time.monotonic()

        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/ready").json().get("active") != 1:
            assert time.monotonic() < deadline, "the first request was never admitted"
            time.sleep(0.05)
        # The next admission kills the engine thread while the stream is in flight.
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/chat/completions", json=LONG, timeout=60)
        # Seconds, not the router's 300 s timeout (the bound is loose: the test machine may be busy).
        assert time.monotonic() - started < 30, "a dead engine must fail its requests at once"
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "engine_failed"
        assert response.json()["error"]["type"] == "overloaded_error"
        assert response.headers["retry-after"] == "2"

        reader.join(timeout=10)
        assert "first_chunk" in stream_outcome
        error = stream_outcome["ended"]
        assert isinstance(error, openai.APIError), error
        assert "engine" in str(error.message)
        assert stream_outcome["at"] - started < 30

        # Unready (or already gone) and exiting with a non-zero code, which `tandem up` restarts.
        try:
            ready = httpx.get(f"{url}/ready", timeout=2)
            assert ready.status_code == 503, ready.text
        except httpx.TransportError:
            pass  # already shut down
        assert proc.wait(timeout=30) == 70
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tandem_up_restarts_a_worker_whose_engine_died(tmp_path, monkeypatch):
    """The whole chain through `tandem up`: the engine dies on its second admission, the router answers 503,
    the supervisor restarts the worker (it exited 70), and the new worker answers."""
    monkeypatch.setenv("TANDEM_WORKER_ENGINE_FAULT_AFTER_ADMITS", "1")  # the environment fills unset settings
    running = start_tandem_up(tmp_path)
    try:
        client = openai.OpenAI(base_url=running.base_url, api_key="x", max_retries=0, timeout=120)
        ask = {"model": "tandem-base", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2,
               "temperature": 0, "extra_headers": {"Cache-Control": "no-store"}}
        pid = httpx.get(f"{running.worker_url}/ready", headers=running.internal_headers).json()["pid"]
        assert client.chat.completions.create(**ask).choices[0].message.content is not None
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(**ask)
        assert err.value.status_code == 503
        deadline = time.monotonic() + 180
        while True:
            try:
                ready = httpx.get(f"{running.worker_url}/ready", headers=running.internal_headers, timeout=2)
                if ready.status_code == 200 and ready.json()["pid"] != pid:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the worker was not restarted"
            time.sleep(0.5)
        deadline = time.monotonic() + 60  # the router sees the worker again at its next model refresh
        while True:
            try:
                assert client.chat.completions.create(**ask).choices[0].message.content is not None
                break
            except openai.APIStatusError as exc:
                assert exc.status_code == 503 and time.monotonic() < deadline, exc
                time.sleep(1)
    finally:
        stop_tandem_up(running)
