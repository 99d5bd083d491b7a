"""Cache scope: the router keys answers by the version each worker reports for a model (base + adapter
sha), so when a worker comes back with another adapter, the scope and with it every key change. A
real HTTP worker stand-in in a thread (its /v1/models is all the router reads here)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Self

import uvicorn
from prometheus_client import CollectorRegistry, Gauge
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tandem.common.wire import ChatCompletionRequest
from tandem.services.cache.keys import exact_key
from tandem.services.router.settings import RouterSettings, WorkerEndpoint
from tandem.services.router.workers import WorkerPool
from tandem.services.worker.model_loading import ServedModels
from tests.conftest import free_port


class ModelListServer:
    def __init__(self):
        self.versions = {"tandem-base": "aaaa", "tandem-code": "aaaa+c0de1"}
        self.port = free_port()
        app = Starlette(routes=[Route("/v1/models", self._models)])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _models(self, request):
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "version": v}
                                                        for m, v in self.versions.items()]})

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_scope_follows_the_adapter_version_the_worker_reports():
    body = ChatCompletionRequest(model="tandem-code", messages=[{"role": "user", "content": "Reverse a string."}],
                                 temperature=0)
    with ModelListServer() as worker:
        settings = RouterSettings(workers=[WorkerEndpoint(name="w", url=f"http://127.0.0.1:{worker.port}")])
        gauge = Gauge("up", "", ["worker"], registry=CollectorRegistry())

        async def run():
            pool = WorkerPool(settings, gauge)
            await pool.refresh()
            before = pool.cache_scope("tandem-code"), pool.cache_scope("auto"), pool.cache_scope("tandem-base")
            worker.versions["tandem-code"] = "aaaa+c0de2"  # the code modifier was retrained and redeployed
            await pool.refresh()
            after = pool.cache_scope("tandem-code"), pool.cache_scope("auto"), pool.cache_scope("tandem-base")
            await pool.aclose()
            return before, after
        before, after = asyncio.run(run())
    assert before[0] == "aaaa+c0de1" and after[0] == "aaaa+c0de2"
    assert before[1] != after[1] and "tandem-code=aaaa+c0de2" in after[1]  # auto may route to the modifier
    assert before[2] == after[2] == "aaaa"  # the base did not change: its answers stay valid
    assert exact_key(body, before[0]) != exact_key(body, after[0])


def test_worker_version_is_the_base_sha_plus_the_adapter_sha(tmp_path: Path):
    served = ServedModels(base_path=tmp_path / "base.gguf", base_sha256="ab" * 32,
                          adapters={"tandem-code": tmp_path / "code.gguf"}, adapter_sha256={"tandem-code": "cd" * 32})
    assert served.version("tandem-base") == "ab" * 8
    assert served.version("tandem-code") == "ab" * 8 + "+" + "cd" * 8
