"""The router's bounds on one request: how many may wait for an answer at once, and how long each
may take in all.

Without them a burst queues without limit in the router (each request holding a socket and memory
while it waits for one of the worker pool's connections) and a request may wait the worker timeout
several times over (fallback, then worker, then fallback again). Past `max_waiting_requests` the
router answers 503 with Retry-After at once; past `request_deadline_s` (counted from arrival) 504
with Retry-After. "Waiting" lasts until the answer starts: a whole non-streamed answer, a stream's
headers; a stream's body then runs under the same deadline in the relay (answering.py), which ends
it with an error event when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from fastapi.responses import Response

from tandem.common.errors import OverloadedError, UpstreamTimeoutError
from tandem.common.metrics import ServiceMetrics


class RequestLimits:
    def __init__(self, max_waiting: int, deadline_s: float, metrics: ServiceMetrics):
        self.max_waiting = max_waiting
        self.deadline_s = deadline_s
        self.metrics = metrics
        self.waiting = 0

    def remaining_s(self, started: float) -> float:
        """Seconds left of the deadline of a request that arrived at `started` (time.perf_counter)."""
        return self.deadline_s - (time.perf_counter() - started)

    async def run(self, answer: Awaitable[Response], started: float, route: str, headers: dict[str, str]) -> Response:
        """Await `answer` if there is room and time for it, else refuse with the reason."""
        if self.waiting >= self.max_waiting:
            if asyncio.iscoroutine(answer):
                answer.close()
            self.metrics.observe(route, 503, time.perf_counter() - started)
            raise OverloadedError(f"The router already has {self.waiting} requests waiting for an answer (its "
                                  f"limit). Retry shortly.", code="router_busy",
                                  headers={"Retry-After": "1", **headers})
        self.waiting += 1
        try:
            async with asyncio.timeout(max(0.0, self.remaining_s(started))) as deadline:
                return await answer
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            self.metrics.observe(route, 504, time.perf_counter() - started)
            raise UpstreamTimeoutError(f"No answer within the router's deadline of {self.deadline_s:g}s per request.",
                                       code="deadline_exceeded", headers={"Retry-After": "2", **headers}) from exc
        finally:
            self.waiting -= 1
