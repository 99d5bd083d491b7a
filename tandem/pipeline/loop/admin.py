"""The running stack's admin API as the loop uses it: `POST /admin/reload` behind the internal credential."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx


def reload(router_url: str, timeout_s: float) -> dict[str, Any]:
    """POST /admin/reload on the router with the internal token; its JSON answer (raises on failure)."""
    from tandem.common.internal_auth import InternalAuthSettings

    response = httpx.post(f"{router_url.rstrip('/')}/admin/reload", headers=InternalAuthSettings().bearer_headers(),
                          timeout=timeout_s)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise RuntimeError(f"reload failed ({response.status_code}): {json.dumps(body)[:500] or response.text[:300]}")
    return body


def reload_and_check(router_url: str, timeout_s: float, result: dict[str, Any],
                     mismatch: Callable[[dict[str, Any]], str | None], live: Callable[[], dict[str, Any]],
                     errors: tuple[type[Exception], ...] = (httpx.HTTPError, RuntimeError, KeyError)) -> str | None:
    """A promotion's reload and its checks: reload the running stack, `mismatch(answer)` says why it does not
    serve what was promoted (None: it does), then `live()` asks it (a dict with `passed` and `why`).

    Records the reload's start and end and the live check in `result`; returns why it failed, or None.
    """
    try:
        result["reload_started"] = time.time()
        reloaded = reload(router_url, timeout_s)
        result["reload_finished"] = time.time()
        failure = mismatch(reloaded)
        if failure is None:
            result["live"] = live()
            if not result["live"]["passed"]:
                failure = result["live"]["why"]
    except errors as exc:
        failure = f"{type(exc).__name__}: {exc}"
    result["reloaded"] = True
    return failure
