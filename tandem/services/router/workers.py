"""The router's view of its workers: which models each serves, whether each is up, and pooled HTTP
calls to them.

`refresh_forever` is the background health poll: every `model_refresh_s` it asks each worker for
its model list and sets `tandem_worker_up` (0 or 1) from the answer, so the gauge is current
whether or not anyone calls /ready. A failed call to a worker marks it down at once.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from prometheus_client import Gauge

from tandem.common.errors import OverloadedError, UpstreamTimeoutError
from tandem.common.internal_auth import InternalAuthSettings
from tandem.common.keep_alive import pool_limits
from tandem.services.router.settings import RouterSettings, WorkerEndpoint

log = logging.getLogger(__name__)

POOL_CONNECTIONS = 256  # to all workers together; a request that finds none free within connect_timeout_s gets 503
# A worker that drops the connection before sending any response byte (a pooled connection it had just
# closed, or a restart in between) is asked once more on a fresh connection. Safe: a generation changes
# nothing on the worker, and the failure came before any of the answer reached the client.
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class WorkerPool:
    def __init__(self, settings: RouterSettings, worker_up: Gauge):
        self.settings = settings
        self.client = httpx.AsyncClient(
            headers=InternalAuthSettings().bearer_headers(),  # workers answer only the router
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s,
                                  pool=settings.connect_timeout_s),
            limits=pool_limits(POOL_CONNECTIONS, 64))
        self.models: dict[str, WorkerEndpoint] = {}
        self.served_by: dict[str, list[str]] = {}  # model -> names of the workers that listed it
        self.versions: dict[str, str] = {}  # model -> the version its worker reports (base + adapter sha)
        self._worker_versions: dict[str, dict[str, str]] = {}
        self.worker_up = worker_up
        self.up: dict[str, bool] = {}
        for worker in settings.workers:
            self.mark(worker.name, False)

    def mark(self, name: str, up: bool) -> None:
        self.up[name] = up
        self.worker_up.labels(name).set(1 if up else 0)

    async def refresh(self) -> None:
        """Ask every worker which models it serves. A model goes to the first live worker listing it;
        a worker that does not answer keeps its models (calls fail fast with 503 until it is back)."""
        listed: dict[str, list[str]] = {}
        for worker in self.settings.workers:
            try:
                response = await self.client.get(f"{worker.url}/v1/models", timeout=self.settings.connect_timeout_s)
                response.raise_for_status()
                cards = response.json()["data"]
                listed[worker.name] = [card["id"] for card in cards]
                self._worker_versions[worker.name] = {card["id"]: card.get("version") or "" for card in cards}
                if not self.up[worker.name]:
                    log.info("worker %s is up at %s", worker.name, worker.url)
                self.mark(worker.name, True)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                if self.up[worker.name]:
                    log.error("worker %s at %s stopped answering: %s", worker.name, worker.url, exc)
                self.mark(worker.name, False)
                listed[worker.name] = self.served_by_worker(worker.name)
        by_name = {w.name: w for w in self.settings.workers}
        live_first = sorted(self.settings.workers, key=lambda w: not self.up[w.name])  # stable: keeps preference
        models: dict[str, WorkerEndpoint] = {}
        served_by: dict[str, list[str]] = {}
        for worker in live_first:
            for model in listed[worker.name]:
                models.setdefault(model, by_name[worker.name])
                served_by.setdefault(model, []).append(worker.name)
        self.models, self.served_by = models, served_by
        self.versions = {m: self._worker_versions.get(w.name, {}).get(m, "") for m, w in models.items()}

    def cache_scope(self, model: str) -> str:
        """The cache scope of a request (keys.exact_key): the version of the model that answers it; for
        `auto`, of every model it may be routed to. Changes whenever a worker's base or adapter does."""
        if model in self.versions:
            return self.versions[model]
        return ",".join(f"{m}={v}" for m, v in sorted(self.versions.items())) if model == "auto" else ""

    def served_by_worker(self, name: str) -> list[str]:
        return [model for model, names in self.served_by.items() if name in names]

    def unserved_models(self) -> list[str]:
        """Models that no live worker serves now."""
        return sorted(m for m, names in self.served_by.items() if not any(self.up[n] for n in names))

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_refresh_s)
            await self.refresh()

    def worker_for(self, model: str) -> WorkerEndpoint | None:
        return self.models.get(model)

    async def send(self, worker: WorkerEndpoint, payload: dict, headers: dict[str, str] | None = None,
                   path: str = "/v1/chat/completions") -> httpx.Response:
        """POST a chat (or legacy completions) request; the response is open for streaming (the caller closes it)."""
        request = self.client.build_request("POST", f"{worker.url}{path}", json=payload, headers=headers)
        try:
            try:
                return await self.client.send(request, stream=True)
            except DROPPED as exc:
                log.warning("worker %s dropped the connection before answering (%s); asking once more",
                            worker.name, type(exc).__name__)
                return await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.PoolTimeout):  # every connection to the workers is busy: shed, don't queue
                raise OverloadedError(f"All {POOL_CONNECTIONS} connections to the workers are busy.",
                                      headers={"Retry-After": "1"}) from exc
            if isinstance(exc, httpx.ConnectTimeout):
                self.mark(worker.name, False)
                raise OverloadedError(f"Worker '{worker.name}' did not accept the connection in time.",
                                      headers={"Retry-After": "2"}) from exc
            raise UpstreamTimeoutError(f"Worker '{worker.name}' did not answer within "
                                       f"{self.settings.request_timeout_s:.0f}s.") from exc
        except httpx.TransportError as exc:
            self.mark(worker.name, False)
            raise OverloadedError(f"Worker '{worker.name}' is unavailable ({type(exc).__name__}); "
                                  "no other worker serves this model.", headers={"Retry-After": "2"}) from exc

    async def aclose(self) -> None:
        await self.client.aclose()
