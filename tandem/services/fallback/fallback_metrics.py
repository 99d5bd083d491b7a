"""Fallback-only Prometheus series, on the same registry as the request family.

The retry causes and refusal reasons are a closed set, so their series are created at 0: a
dashboard then reads "none" as 0 rather than as no data, and the first retry shows as a rate.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from tandem.common.metrics import ServiceMetrics
from tandem.services.fallback.refusals import STATUS as REFUSAL_REASONS

# Upstream.send's causes: connection failures and the retried statuses (upstream.RETRY_STATUSES).
RETRY_CAUSES = ("connect", "transport", "429", "500", "502", "503", "504")


class FallbackMetrics:
    def __init__(self, base: ServiceMetrics):
        r = base.registry
        self.spend = Counter("tandem_fallback_spend_usd", "Upstream spend (usage x price table), USD.", ["model"],
                             registry=r)
        self.budget_remaining = Gauge("tandem_fallback_budget_remaining_usd", "Budget left today, USD.",
                                      registry=r)
        self.circuit = Gauge("tandem_fallback_circuit_state", "Upstream circuit: 0 closed, 1 half-open, 2 open.",
                             registry=r)
        self.retries = Counter("tandem_fallback_retries", "Upstream calls retried, by cause.", ["cause"], registry=r)
        self.refusals = Counter("tandem_fallback_refusals", "Requests refused without an answer, by reason.",
                                ["reason"], registry=r)
        for cause in RETRY_CAUSES:
            self.retries.labels(cause)
        for reason in REFUSAL_REASONS:
            self.refusals.labels(reason)
