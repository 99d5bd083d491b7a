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
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tandem.services.router.playground.api import playground_api
from tandem.services.router.recent import RecentRoutes, RecentRoutesMiddleware

STATIC_DIR = Path(__file__).parent / "static"
RECENT_CAPACITY = 100
# The page keeps an API key in sessionStorage: it loads and talks to nothing but this origin, and
# no other site may frame it. A violation shows in the browser console, which the tests read.
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class PlaygroundFiles(StaticFiles):
    """The page's static files, each with PAGE_HEADERS."""

    def file_response(self, *args, **kwargs) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(PAGE_HEADERS)
        return response


def mount_playground(app: FastAPI, access: Callable[..., Awaitable[str]]) -> None:
    """Serve the page at /ui/ (and redirect / there), record routing decisions, add the data endpoints."""
    recent = RecentRoutes(RECENT_CAPACITY)
    app.add_middleware(RecentRoutesMiddleware, decisions=recent)
    app.include_router(playground_api(recent), dependencies=[Depends(access)])
    app.mount("/ui", PlaygroundFiles(directory=STATIC_DIR, html=True), name="playground")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")
