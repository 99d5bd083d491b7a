"""`POST /admin/reload`: serve the artifacts folder's current modifiers without a restart.

The operator (or `tandem loop` promoting a new adapter, or rolling one back) rewrites the manifest,
then calls this endpoint with the internal credential (`Authorization: Bearer
<TANDEM_INTERNAL_TOKEN>`, like the cache admin endpoints; 403 when none is configured). The router
asks every worker to reload (`POST /admin/reload` on each, tandem/services/worker/app.py: new
adapter versions are loaded before any request is pointed at them, and requests already running
finish on the version they started with), then refreshes its own model list and versions at once,
so the response cache, which keys answers by the version that made them, never serves an answer of
the replaced adapter for the new one. The answer lists each worker's result and the version every
model is served at now; 502 when a worker failed to reload (the others keep what they loaded).

The domain router reloads in the same call when the manifest's router entry changed (its files'
hashes, `artifact_version`): the new router is built in full off the event loop (files verified,
encoder session, heads), and only then put in the state's place, one reference assignment; a request
already routing keeps the router object it started with. A router that cannot be built leaves the
served one in place (502, with the error). The answer's `router` says what happened and the version
served now. A keyword router has no artifact and is not reloaded.

Between a worker's swap and the router's refresh (milliseconds) an answer of the new version can
be stored under the old version's key; it is found again only if that old version is served again
(a rollback).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from tandem.services.cache.admin import admin_operator
from tandem.services.routing.base import RouterLoadError


class DomainRouterReloader:
    """Rebuilds the domain router when its manifest entry changed, then swaps it in (`swap`)."""

    def __init__(self, current: Callable[[], Any], build: Callable[[], Any], version: Callable[[], str],
                 swap: Callable[[Any], None]):
        self.current, self.build, self.version, self.swap = current, build, version, swap
        self.lock = asyncio.Lock()  # one rebuild at a time; a second reload waits, then finds it current

    async def __call__(self) -> dict[str, Any]:
        async with self.lock:
            loaded = getattr(self.current(), "version", None)
            if loaded is None:
                return {"ok": True, "reloaded": False, "version": None, "why": "this domain router has no artifact"}
            try:
                listed = await asyncio.to_thread(self.version)
                if listed == loaded:
                    return {"ok": True, "reloaded": False, "version": loaded}
                new = await asyncio.to_thread(self.build)  # built in full before anyone sees it
            except (RouterLoadError, OSError, ValueError) as exc:  # keep serving the old one
                return {"ok": False, "reloaded": False, "version": loaded, "error": f"{type(exc).__name__}: {exc}"}
            self.swap(new)
            return {"ok": True, "reloaded": True, "version": new.version, "previous": loaded}


def reload_router(token: SecretStr | None, pool_of: Callable[[Request], Any],
                  reload_domain_router: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    operator = admin_operator(token, "Reloading")

    @router.post("/reload", dependencies=[Depends(operator)])
    async def reload(request: Request) -> JSONResponse:
        pool = pool_of(request)

        async def one(worker) -> dict[str, Any]:
            try:
                response = await pool.client.post(f"{worker.url}/admin/reload", timeout=600)
            except httpx.HTTPError as exc:
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            try:
                body = response.json()
            except ValueError:
                body = {"text": response.text[:500]}
            return {"ok": response.status_code == 200, "status": response.status_code, **body}

        results = await asyncio.gather(*(one(w) for w in pool.settings.workers))
        await pool.refresh()
        workers = {w.name: r for w, r in zip(pool.settings.workers, results, strict=True)}
        routed = await reload_domain_router() if reload_domain_router is not None else None
        ok = all(r["ok"] for r in workers.values()) and (routed is None or routed["ok"])
        return JSONResponse({"ok": ok, "workers": workers, "versions": dict(pool.versions), "router": routed},
                            status_code=200 if ok else 502)

    return router
