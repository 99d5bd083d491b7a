"""The catch-all: an exception no handler takes becomes a 500 in OpenAI's shape naming a request
id, and the log holds the traceback under that id without the exception's message (which may
quote a prompt) unless TANDEM_LOG_PAYLOADS=1, and then with credentials redacted. A real server
(uvicorn, over HTTP) built by the skeleton every service uses, with one route that fails."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from tandem.common.metrics import ServiceMetrics
from tandem.common.service_app import service_app
from tests.conftest import free_port
from tests.gateway.test_gateway_errors import assert_openai_error

SECRET = "sk-live0123456789abcdef"


@asynccontextmanager
async def _lifespan(_app):
    yield


@pytest.fixture(scope="module")
def failing_service():
    app = service_app("failing", _lifespan, ServiceMetrics("failing"), max_body_bytes=4096, internal=False)

    @app.post("/v1/fail")
    async def fail(body: dict) -> dict:
        raise RuntimeError(f"failed on {body['prompt']} with Bearer {SECRET}")

    @app.post("/v1/fail-other")
    async def fail_other() -> dict:
        raise KeyError("no such thing")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_unhandled_error_is_a_500_naming_the_request_id(failing_service, caplog):
    with caplog.at_level(logging.ERROR, logger="tandem.common.catch_all"):
        response = httpx.post(f"{failing_service}/v1/fail", json={"prompt": "my secret plan"})
    error = assert_openai_error(response, 500, "internal_error")
    request_id = response.headers["x-tandem-request-id"]
    assert request_id in error["message"] and "RuntimeError" in error["message"]
    assert "my secret plan" not in error["message"]
    logged = caplog.text
    assert request_id in logged and "Traceback" in logged and "builtins.RuntimeError" in logged
    assert "my secret plan" not in logged and SECRET not in logged
    assert "TANDEM_LOG_PAYLOADS" in logged


def test_operator_can_opt_in_to_messages_with_credentials_redacted(failing_service, caplog, monkeypatch):
    monkeypatch.setenv("TANDEM_LOG_PAYLOADS", "1")
    with caplog.at_level(logging.ERROR, logger="tandem.common.catch_all"):
        response = httpx.post(f"{failing_service}/v1/fail", json={"prompt": "my secret plan"})
    assert response.status_code == 500
    assert "failed on my secret plan" in caplog.text
    assert SECRET not in caplog.text and "Bearer [REDACTED]" in caplog.text


def test_every_failure_gets_its_own_id(failing_service):
    ids = {httpx.post(f"{failing_service}/v1/fail-other").headers["x-tandem-request-id"] for _ in range(3)}
    assert len(ids) == 3
