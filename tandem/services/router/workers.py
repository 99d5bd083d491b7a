"""The router's view of its workers: which models each serves, and pooled HTTP calls to them."""

from __future__ import annotations

import asyncio
import logging

import httpx

from tandem.common.errors import OverloadedError, UpstreamTimeoutError
from tandem.services.router.settings import RouterSettings, WorkerEndpoint

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, settings: RouterSettings):
        self.settings = settings
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.models: dict[str, WorkerEndpoint] = {}
        self.up: dict[str, bool] = {w.name: False for w in settings.workers}

    async def refresh(self) -> None:
        """Ask every worker which models it serves; a worker that does not answer serves none."""
        models: dict[str, WorkerEndpoint] = {}
        for worker in self.settings.workers:
            try:
                response = await self.client.get(f"{worker.url}/v1/models", timeout=self.settings.connect_timeout_s)
                response.raise_for_status()
                for card in response.json()["data"]:
                    models.setdefault(card["id"], worker)
                if not self.up[worker.name]:
                    log.info("worker %s is up at %s", worker.name, worker.url)
                self.up[worker.name] = True
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                if self.up[worker.name]:
                    log.error("worker %s at %s stopped answering: %s", worker.name, worker.url, exc)
                self.up[worker.name] = False
                # Keep routing its models to it: calls fail fast with 503 until it is back.
                for model, owner in self.models.items():
                    if owner.name == worker.name:
                        models.setdefault(model, owner)
        self.models = models

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_refresh_s)
            await self.refresh()

    def worker_for(self, model: str) -> WorkerEndpoint | None:
        return self.models.get(model)

    async def send(self, worker: WorkerEndpoint, payload: dict, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST a chat request; the response is open for streaming (the caller closes it)."""
        request = self.client.build_request("POST", f"{worker.url}/v1/chat/completions", json=payload,
                                            headers=headers)
        try:
            return await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                self.up[worker.name] = False
                raise OverloadedError(f"Worker '{worker.name}' did not accept the connection in time.",
                                      headers={"Retry-After": "2"}) from exc
            raise UpstreamTimeoutError(f"Worker '{worker.name}' did not answer within "
                                       f"{self.settings.request_timeout_s:.0f}s.") from exc
        except httpx.TransportError as exc:
            self.up[worker.name] = False
            raise OverloadedError(f"Worker '{worker.name}' is unavailable ({type(exc).__name__}); "
                                  "no other worker serves this model.", headers={"Retry-After": "2"}) from exc

    async def aclose(self) -> None:
        await self.client.aclose()
