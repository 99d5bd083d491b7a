"""The web playground: a static page at `/ui/` (vanilla JS, no build step) and the read-only data it
needs beyond the OpenAI API (`GET /v1/recent`, `GET /v1/prices`).

The page itself holds no data, so it is served without a key; every call it makes goes to the
router's own endpoints with the key the user pasted (kept in the browser's sessionStorage), through
the same auth and rate limit as any client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from tandem.services.router.playground.api import playground_api
from tandem.services.router.recent import RecentRoutes, RecentRoutesMiddleware

STATIC_DIR = Path(__file__).parent / "static"
RECENT_CAPACITY = 100


def mount_playground(app: FastAPI, access: Callable[..., Awaitable[str]]) -> None:
    """Serve the page at /ui/ (and redirect / there), record routing decisions, add the data endpoints."""
    recent = RecentRoutes(RECENT_CAPACITY)
    app.add_middleware(RecentRoutesMiddleware, decisions=recent)
    app.include_router(playground_api(recent), dependencies=[Depends(access)])
    app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="playground")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")
