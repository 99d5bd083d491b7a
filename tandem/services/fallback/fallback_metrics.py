"""Fallback-only Prometheus series, on the same registry as the request family."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from tandem.common.metrics import ServiceMetrics


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
