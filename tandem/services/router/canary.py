"""The routing canary: live routing accuracy that needs no client cooperation.

On a schedule the router routes the labelled probe set shipped with its router artifact (the
held-out test split, `probes.jsonl`, listed in the manifest) through the very domain router it
serves, using the routing decision only (no generation, no worker), and exports the last run's
per-domain counts:

  tandem_canary_probes{domain}              probes whose true domain is `domain`
  tandem_canary_correct{domain}             of those, routed to `domain`
  tandem_canary_confusion{actual,predicted} the confusion matrix
  tandem_canary_runs_total, tandem_canary_last_run_timestamp_seconds

Accuracy per domain is correct / probes (Grafana divides). A changed artifact, a broken encoder
or a wrong domain list shows here within one interval. The router is CPU work, so runs go to a
thread and probes are capped per domain (`max_probes_per_domain`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter as Tally
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, Field

from tandem.common.manifest import Manifest, ManifestError
from tandem.common.recipe_config import RecipeModel
from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.base import DomainRouter

log = logging.getLogger(__name__)

PROBES_FILE = "probes.jsonl"


class CanarySettings(RecipeModel):
    enabled: bool = Field(True, description="Route the router artifact's probe set on a schedule (when it "
                          "ships one).")
    interval_s: float = Field(300.0, gt=0, description="Seconds between canary runs (the first runs at start).")
    max_probes_per_domain: int = Field(200, ge=1, description="Probes routed per domain and run.")
    router_entry: str = Field("router", description="Manifest entry of the router artifact holding the probes.")


class Probe(BaseModel):
    text: str = Field(min_length=1)
    domain: str
    tools: list[dict] = Field(default_factory=list)

    def request(self) -> ChatCompletionRequest:
        return ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user",
                                                     "content": self.text}], "tools": self.tools or None})


def load_probes(artifacts_dir: str | Path | None, entry: str, domains: list[str], per_domain: int) -> list[Probe]:
    """The probe set listed in the manifest's router entry (sha256-checked), capped per domain; empty
    when there is no artifact or it ships no probes."""
    if artifacts_dir is None or not (Path(artifacts_dir) / "manifest.json").exists():
        return []
    manifest = Manifest(artifacts_dir)
    try:
        files = manifest.entry(entry).files
        index = next((i for i, rec in enumerate(files) if Path(rec.path).name == PROBES_FILE), None)
        if index is None:
            return []
        path = manifest.verified_path(entry, index)
    except ManifestError as exc:
        log.warning("routing canary off: %s", exc)
        return []
    taken: Tally[str] = Tally()
    probes = []
    for line in path.read_text().splitlines():
        probe = Probe.model_validate_json(line)
        if probe.domain in domains and taken[probe.domain] < per_domain:
            taken[probe.domain] += 1
            probes.append(probe)
    return probes


class CanaryMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.probes = Gauge("tandem_canary_probes", "Canary probes of the last run, by true domain.", ["domain"],
                            registry=registry)
        self.correct = Gauge("tandem_canary_correct", "Canary probes of the last run routed to their true domain.",
                             ["domain"], registry=registry)
        self.confusion = Gauge("tandem_canary_confusion", "Canary probes of the last run by true and routed "
                               "domain.", ["actual", "predicted"], registry=registry)
        self.runs = Counter("tandem_canary_runs", "Canary runs completed.", registry=registry)
        self.last_run = Gauge("tandem_canary_last_run_timestamp_seconds", "Unix time of the last canary run.",
                              registry=registry)


class RoutingCanary:
    def __init__(self, router: DomainRouter, probes: list[Probe], domains: list[str], metrics: CanaryMetrics):
        self.router = router
        self.probes = probes
        self.domains = domains
        self.metrics = metrics

    def run_once(self) -> dict[str, float]:
        """Route every probe; set the gauges; return accuracy per true domain."""
        confusion: Tally[tuple[str, str]] = Tally(
            (probe.domain, self.router.route(probe.request()).domain) for probe in self.probes)
        accuracy = {}
        for actual in self.domains:
            total = sum(n for (a, _), n in confusion.items() if a == actual)
            if not total:
                continue
            correct = confusion[(actual, actual)]
            self.metrics.probes.labels(actual).set(total)
            self.metrics.correct.labels(actual).set(correct)
            for predicted in self.domains:
                self.metrics.confusion.labels(actual, predicted).set(confusion[(actual, predicted)])
            accuracy[actual] = correct / total
        self.metrics.runs.inc()
        self.metrics.last_run.set(time.time())
        return accuracy

    async def run_forever(self, interval_s: float) -> None:
        while True:
            started = time.perf_counter()
            try:
                accuracy = await asyncio.to_thread(self.run_once)
                log.info("routing canary: %d probes in %.1fs, accuracy by domain %s", len(self.probes),
                         time.perf_counter() - started, json.dumps({d: round(a, 3) for d, a in accuracy.items()}))
            except Exception:  # a failing run must not stop the next one; the stale timestamp shows it
                log.exception("routing canary run failed")
            await asyncio.sleep(interval_s)
