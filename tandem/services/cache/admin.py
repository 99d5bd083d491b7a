"""The operator's view of the cache: list the semantic index's entries, evict one.

`GET /admin/cache/entries?contains=&limit=` lists what the semantic index holds (newest first: the
prompt, its exact key, when it was added); `DELETE /admin/cache/entries/{key}` drops an entry from
the store and the index (say, an answer found wrong). Both need the internal credential
(`Authorization: Bearer <TANDEM_INTERNAL_TOKEN>`, tandem/common/internal_auth.py), not a client API
key: a client must not read other tenants' prompts or evict their answers. Without an internal
token configured the endpoints answer 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, SecretStr

from tandem.common.errors import AuthenticationError, OverloadedError, TandemError
from tandem.services.cache.backends import CacheUnavailable
from tandem.services.cache.response_cache import ResponseCache


class AdminDisabledError(TandemError):
    status_code = 403
    error_type = "permission_error"
    code = "admin_disabled"


class CacheEntry(BaseModel):
    key: str
    text: str
    added: float


class CacheEntries(BaseModel):
    semantic: bool
    total: int
    entries: list[CacheEntry]


class Eviction(BaseModel):
    key: str
    evicted: bool


def admin_operator(token: SecretStr | None, action: str) -> Callable[[Request], Awaitable[None]]:
    """The dependency of an /admin endpoint: the caller must present the internal token. `action`
    names the endpoint in the errors ("Cache administration", "Reloading")."""

    async def operator(request: Request) -> None:
        if token is None:
            raise AdminDisabledError(f"{action} needs the internal credential: set TANDEM_INTERNAL_TOKEN "
                                     "(or TANDEM_INTERNAL_TOKEN_FILE) on the router.")
        auth = request.headers.get("authorization", "")
        presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
            raise AuthenticationError(f"{action} needs the internal token "
                                      "(Authorization: Bearer <TANDEM_INTERNAL_TOKEN>).", code="invalid_admin_token")

    return operator


def cache_admin_router(token: SecretStr | None, cache_of: Callable[[Request], ResponseCache | None]) -> APIRouter:
    router = APIRouter(prefix="/admin/cache", tags=["admin"])

    operator = admin_operator(token, "Cache administration")

    def cache(request: Request) -> ResponseCache:
        found = cache_of(request)
        if found is None:
            raise OverloadedError("The response cache is disabled or not started.", code="cache_disabled")
        return found

    @router.get("/entries", dependencies=[Depends(operator)])
    async def entries(request: Request, contains: str = "",
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> CacheEntries:
        """The semantic index's entries, newest first (exact-only entries live in the store alone)."""
        semantic = cache(request).semantic
        if semantic is None:
            return CacheEntries(semantic=False, total=0, entries=[])
        found = [e for e in reversed(semantic.entries()) if contains.lower() in e.text.lower()]
        return CacheEntries(semantic=True, total=len(found),
                            entries=[CacheEntry(key=e.key, text=e.text, added=e.added) for e in found[:limit]])

    @router.delete("/entries/{key:path}", dependencies=[Depends(operator)])
    async def evict(key: str, request: Request) -> Eviction:
        try:
            return Eviction(key=key, evicted=await cache(request).evict(key))
        except CacheUnavailable as exc:
            raise OverloadedError(f"The cache store did not answer: {exc}", code="cache_unavailable") from exc

    return router
