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

Between a worker's swap and the router's refresh (milliseconds) an answer of the new version can
be stored under the old version's key; it is found again only if that old version is served again
(a rollback).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from tandem.services.cache.admin import admin_operator


def reload_router(token: SecretStr | None, pool_of: Callable[[Request], Any]) -> APIRouter:
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
        ok = all(r["ok"] for r in workers.values())
        return JSONResponse({"ok": ok, "workers": workers, "versions": dict(pool.versions)},
                            status_code=200 if ok else 502)

    return router
