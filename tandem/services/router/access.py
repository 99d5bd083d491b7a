"""Authentication (bearer keys) and a per-key sliding-window rate limit, as one dependency."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from fastapi import Request

from tandem.common.errors import AuthenticationError, RateLimitError
from tandem.services.router.settings import RouterSettings


class AccessControl:
    def __init__(self, settings: RouterSettings):
        self.keys = set(settings.api_keys)
        self.limit = settings.rate_limit_per_minute
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def __call__(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        if self.keys and key not in self.keys:
            raise AuthenticationError("Missing or invalid API key: pass it as 'Authorization: Bearer <key>'.")
        client = key or (request.client.host if request.client else "anonymous")
        if self.limit:
            now = time.monotonic()
            window = self._hits[client]
            while window and now - window[0] > 60.0:
                window.popleft()
            if len(window) >= self.limit:
                retry = max(1, int(60.0 - (now - window[0])) + 1)
                raise RateLimitError(f"Rate limit of {self.limit} requests per minute reached; retry in {retry}s.",
                                     headers={"Retry-After": str(retry)})
            window.append(now)
        return client
