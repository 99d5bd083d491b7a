"""Real servers for the cache, fallback and escalation tests: a private Redis, service processes,
and a fault-injecting HTTP proxy in front of the "frontier" upstream."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import free_port, wait_for


class RedisServer:
    """A private redis-server on a free port (tests may kill it)."""

    def __init__(self):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: apt-get install -y redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
                                      "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
        import redis
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def shared_redis_url() -> str | None:
    """CI's Redis (TANDEM_TEST_REDIS_URL), for tests that never kill it."""
    return os.environ.get("TANDEM_TEST_REDIS_URL")


def start_service(module: str, settings: dict, port: int | None = None,
                  env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`env`: the process's environment (e.g. with TANDEM_INTERNAL_TOKEN); default: this one's."""
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), "--settings", json.dumps(settings),
                             "--log-level", "warning"], start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", proc=proc)
    except Exception:
        stop_process(proc)
        raise
    return proc, url


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Faults:
    status_429: int = 0  # answer the next N requests with 429
    delay_s: float = 0.0  # wait this long before forwarding
    seen: int = 0  # requests received
    statuses: list[int] = field(default_factory=list)


class FaultProxy:
    """An HTTP proxy in a thread: forwards /v1/* to `target`, or injects 429s and delays; `down()`
    stops it (connection refused), `up()` starts it again on the same port."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.faults = Faults()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _app(self) -> Starlette:
        async def forward(request: Request) -> Response:
            self.faults.seen += 1
            if self.faults.status_429 > 0:
                self.faults.status_429 -= 1
                self.faults.statuses.append(429)
                return JSONResponse({"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                                               "code": "rate_limit_exceeded"}}, status_code=429,
                                    headers={"retry-after": "0"})
            if self.faults.delay_s:
                import asyncio
                await asyncio.sleep(self.faults.delay_s)
            self.faults.statuses.append(200)
            client = httpx.AsyncClient(timeout=120)
            upstream_request = client.build_request(request.method, f"{self.target}{request.url.path}",
                                                    content=await request.body(),
                                                    headers={"content-type": "application/json"})
            upstream = await client.send(upstream_request, stream=True)

            async def body():
                try:
                    async for chunk in upstream.aiter_raw():
                        yield chunk
                finally:
                    await upstream.aclose()
                    await client.aclose()
            return StreamingResponse(body(), status_code=upstream.status_code,
                                     media_type=upstream.headers.get("content-type"))

        return Starlette(routes=[Route("/v1/{path:path}", forward, methods=["GET", "POST"])])

    def up(self) -> FaultProxy:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
