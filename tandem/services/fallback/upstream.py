"""Calls to the upstream: jittered exponential backoff on 429, 5xx and connect errors, a circuit
breaker around it all, and timeouts. A read timeout is not retried: the upstream may still be
generating (and billing), and the caller is waiting."""

from __future__ import annotations

import asyncio
import logging
import random

import httpx

from tandem.common.keep_alive import pool_limits
from tandem.services.fallback.circuit import CircuitBreaker
from tandem.services.fallback.fallback_metrics import FallbackMetrics
from tandem.services.fallback.refusals import FallbackRefusedError
from tandem.services.fallback.settings import FallbackSettings

log = logging.getLogger(__name__)
RETRY_STATUSES = {429, 500, 502, 503, 504}


class Upstream:
    def __init__(self, settings: FallbackSettings, metrics: FallbackMetrics):
        self.settings = settings
        self.metrics = metrics
        self.breaker = CircuitBreaker(settings.circuit_failures, settings.circuit_open_s)
        key = settings.api_key().get_secret_value()
        self.client = httpx.AsyncClient(
            base_url=settings.upstream_base_url.rstrip("/"),
            headers={"authorization": f"Bearer {key}"} if key else {},
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            limits=pool_limits(128, 32))

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        delay = self.settings.backoff_base_s * (2 ** attempt) * random.uniform(0.5, 1.5)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after and retry_after.replace(".", "", 1).isdigit():
            delay = max(delay, float(retry_after))
        return min(delay, self.settings.backoff_max_s)

    def _publish_circuit(self) -> None:
        self.metrics.circuit.set(int(self.breaker.state))

    async def send(self, payload: dict) -> httpx.Response:
        """POST /chat/completions; the response is open for streaming (the caller closes it)."""
        if not self.breaker.allow():
            self._publish_circuit()
            raise FallbackRefusedError("circuit_open", "The upstream failed repeatedly; its circuit is open for "
                                       f"{self.breaker.retry_in():.0f}s more.", self.breaker.retry_in())
        last: str = ""
        for attempt in range(self.settings.max_retries + 1):
            response = None
            try:
                request = self.client.build_request("POST", "/chat/completions", json=payload)
                response = await self.client.send(request, stream=True)
            except httpx.ConnectError as exc:
                cause, last = "connect", f"cannot connect to the upstream ({type(exc).__name__})"
            except httpx.ConnectTimeout:
                cause, last = "connect", "the upstream did not accept the connection in time"
            except httpx.TimeoutException as exc:
                self.breaker.failure()
                self._publish_circuit()
                raise FallbackRefusedError("upstream_timeout", "The upstream did not answer within "
                                           f"{self.settings.request_timeout_s:.0f}s.") from exc
            except httpx.TransportError as exc:
                cause, last = "transport", f"the upstream connection failed ({type(exc).__name__})"
            else:
                if response.status_code not in RETRY_STATUSES:
                    self.breaker.success()
                    self._publish_circuit()
                    return response
                cause, last = str(response.status_code), f"the upstream answered {response.status_code}"
                await response.aclose()
            if attempt < self.settings.max_retries:
                self.metrics.retries.labels(cause).inc()
                await asyncio.sleep(self._delay(attempt, response))
        self.breaker.failure()
        self._publish_circuit()
        reason = "upstream_rate_limited" if last.endswith("429") else "upstream_unavailable"
        log.warning("upstream call failed after %d attempts: %s", self.settings.max_retries + 1, last)
        raise FallbackRefusedError(reason, f"The fallback upstream is unavailable: {last} "
                                   f"(after {self.settings.max_retries + 1} attempts).")

    async def aclose(self) -> None:
        await self.client.aclose()
