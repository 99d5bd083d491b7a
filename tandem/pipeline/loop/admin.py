"""The running stack's admin API as the loop uses it: `POST /admin/reload` behind the internal credential."""

from __future__ import annotations

import json
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
