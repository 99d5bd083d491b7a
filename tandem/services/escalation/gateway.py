"""The router's side of escalation: run the policies, call the fallback service, and say why not.

A refusal is never an error for the client: when the fallback is unreachable, out of budget or
its upstream is down, the gateway returns the refusal reason and the router serves the local
answer, with the reason in `x-tandem-escalation-refused` and `tandem_escalation_refusals_total`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx
from prometheus_client import Counter

from tandem.common.internal_auth import InternalAuthSettings
from tandem.common.keep_alive import pool_limits
from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.escalation.policies import (
    EscalationContext,
    EscalationPolicy,
    Verdict,
    build_policy,
    first_escalation,
)
from tandem.services.escalation.settings import EscalationSettings
from tandem.services.routing.base import RouteDecision

log = logging.getLogger(__name__)
REFUSED_HEADER = "x-tandem-fallback-refused"


@dataclass
class EscalationCounters:
    escalations: Counter  # labels: stage (before, after, explicit), reason
    refusals: Counter  # labels: reason


@dataclass
class FallbackReply:
    response: httpx.Response | None  # open (stream or not) when the fallback answered 200
    refused: str | None = None  # the reason otherwise


class EscalationGate:
    def __init__(self, settings: EscalationSettings, artifacts_dir: str | None, counters: EscalationCounters):
        self.settings = settings
        self.counters = counters
        self.policies: list[EscalationPolicy] = [build_policy(p.name, p.threshold, artifacts_dir)
                                                 for p in settings.policies]
        self.models: list[str] = []
        self.client = httpx.AsyncClient(
            base_url=(settings.fallback_url or "http://fallback.invalid").rstrip("/"),
            headers=InternalAuthSettings().bearer_headers(),  # the fallback answers only the router
            timeout=httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s),
            limits=pool_limits())

    @property
    def enabled(self) -> bool:
        return self.settings.fallback_url is not None

    @property
    def needs_logprobs(self) -> bool:
        return self.enabled and any(p.stage == "after" for p in self.policies)

    async def refresh(self) -> None:
        if not self.enabled:
            return
        try:
            response = await self.client.get("/v1/models", timeout=self.settings.connect_timeout_s)
            response.raise_for_status()
            self.models = [card["id"] for card in response.json()["data"]]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("fallback model list unavailable (%s); keeping %s", exc, self.models)

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_s)
            await self.refresh()

    def before(self, request: ChatCompletionRequest, decision: RouteDecision | None) -> Verdict | None:
        if not self.enabled:
            return None
        return first_escalation(self.policies, "before", EscalationContext(request, decision))

    def after(self, request: ChatCompletionRequest, decision: RouteDecision | None, answer: Answer) -> Verdict | None:
        if not self.enabled:  # each policy says whether it needs the answer's logprobs
            return None
        return first_escalation(self.policies, "after", EscalationContext(request, decision, answer))

    async def ask(self, payload: dict, stage: str, reason: str) -> FallbackReply:
        """Send `payload` (its `model` a fallback model) to the fallback; count the escalation or refusal."""
        try:
            request = self.client.build_request("POST", "/v1/chat/completions", json=payload)
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            return self._refused(f"fallback_unreachable ({type(exc).__name__})", "fallback_unreachable")
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            code = response.headers.get(REFUSED_HEADER)
            if code is None:
                try:
                    code = response.json()["error"]["code"] or f"http_{response.status_code}"
                except (ValueError, KeyError, TypeError):
                    code = f"http_{response.status_code}"
            return self._refused(code, code)
        self.counters.escalations.labels(stage, reason).inc()
        return FallbackReply(response=response)

    def _refused(self, detail: str, reason: str) -> FallbackReply:
        log.warning("escalation refused: %s", detail)
        self.counters.refusals.labels(reason).inc()
        return FallbackReply(response=None, refused=reason)

    async def aclose(self) -> None:
        await self.client.aclose()
