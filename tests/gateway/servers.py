"""Misbehaving HTTP servers for the gateway tests: real servers on real ports, answering what a
broken worker or a broken upstream would."""

from __future__ import annotations

import threading
import time
from typing import Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port


class BrokenServer:
    """Answers GET /v1/models (or /models) with `models`, and every chat POST with `status` and
    `body` as it is (not JSON, say). Runs in a thread."""

    def __init__(self, body: bytes, status: int = 200, models: tuple[str, ...] = ("tandem-base",)):
        self.body, self.status, self.models = body, status, models
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chat_calls = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _app(self) -> Starlette:
        async def models(_: Request) -> Response:
            return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

        async def chat(_: Request) -> Response:
            self.chat_calls += 1
            return Response(self.body, status_code=self.status, media_type="text/html")

        return Starlette(routes=[Route("/v1/models", models), Route("/models", models),
                                 Route("/v1/chat/completions", chat, methods=["POST"]),
                                 Route("/chat/completions", chat, methods=["POST"])])

    def __enter__(self) -> Self:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *_) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
