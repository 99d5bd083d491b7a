"""Router-only Prometheus series, on the same registry as the request family."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from tandem.common.metrics import ServiceMetrics


class RouterMetrics:
    def __init__(self, base: ServiceMetrics):
        r = base.registry
        self.decisions = Counter("tandem_route_decisions", "Routing decisions for model=auto, by domain and target.",
                                 ["domain", "target"], registry=r)
        self.confidence = Histogram("tandem_router_confidence", "Domain-router confidence of auto decisions.",
                                    ["domain"], buckets=(0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0), registry=r)
        self.feedback = Counter("tandem_routing_feedback", "Feedback on routed requests: predicted vs correct domain.",
                                ["predicted", "actual", "correct"], registry=r)
        self.ratings = Counter("tandem_feedback_ratings", "User ratings by route.", ["route", "rating"], registry=r)
        self.worker_up = Gauge("tandem_worker_up", "1 when the worker answers its model list.", ["worker"], registry=r)
        self.upstream_errors = Counter("tandem_worker_errors", "Failed calls to workers, by worker and kind.",
                                       ["worker", "kind"], registry=r)
        self.cache_lookups = Counter("tandem_cache_lookups", "Response-cache lookups: hit, miss, bypass "
                                     "(not cacheable or no-cache) or error (store down), by match kind.",
                                     ["result", "kind"], registry=r)
        self.cache_errors = Counter("tandem_cache_errors", "Failed cache calls, by operation: get and set (the store "
                                    "was bypassed), decode (an unreadable entry, answered as a miss).",
                                    ["op"], registry=r)
        self.escalations = Counter("tandem_escalations", "Requests answered by the fallback, by stage "
                                   "(before, after, explicit) and reason (the policy, or explicit model).",
                                   ["stage", "reason"], registry=r)
        self.escalation_refusals = Counter("tandem_escalation_refusals", "Escalations refused (local answer "
                                           "served), by reason.", ["reason"], registry=r)

        # Closed label sets start at 0, so a first event shows as a rate (a series born at 1 shows no
        # increase) and a dashboard reads 0 rather than "no data".
        for result in ("hit", "miss", "bypass", "error"):
            for kind in ("exact", "semantic"):
                self.cache_lookups.labels(result, kind)
        self.escalations.labels("explicit", "explicit_model")

    def initialize_domains(self, domains: list[str]) -> None:
        """Create the per-domain series at 0 (router confidence, every (predicted, actual) feedback pair),
        so that the first event is a rate Prometheus can see (a series born at 1 shows no increase)
        and dashboards read 0, not 'no data'."""
        for domain in domains:
            self.confidence.labels(domain)
        for predicted in domains:
            for actual in domains:
                self.feedback.labels(predicted, actual, str(predicted == actual).lower())
