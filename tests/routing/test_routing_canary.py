"""The routing canary: the router artifact ships its held-out test split as probes.jsonl, and the
router service routes it on a schedule, exporting per-domain accuracy and the confusion matrix."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
from prometheus_client import CollectorRegistry

from tandem.common.manifest import Manifest
from tandem.services.router.canary import PROBES_FILE, CanaryMetrics, RoutingCanary, load_probes
from tandem.services.routing.registry import build_router
from tests.conftest import free_port
from tests.serving.metrics_helpers import sample

ALL = 10**6  # no cap per domain


def _held_out(trained_router) -> list[dict]:
    """The recipe's evaluations of its test split: public/templated rows and, when present, real prompts."""
    evaluations = trained_router.report["evaluations"]["router"]
    return [evaluations[name] for name in ("test", "real_test") if name in evaluations]


def test_router_artifact_ships_its_test_split_as_probes(trained_router):
    domains = trained_router.config.domains
    entry = Manifest(trained_router.artifacts_dir).entry("router")
    assert PROBES_FILE in {rec.path.rsplit("/", 1)[-1] for rec in entry.files}
    probes = load_probes(trained_router.artifacts_dir, "router", domains, ALL)
    held_out = _held_out(trained_router)
    assert len(probes) == sum(ev["n"] for ev in held_out)  # every test row, public/templated and real
    assert {p.domain for p in probes} == set(domains)
    capped = load_probes(trained_router.artifacts_dir, "router", domains, 3)
    assert len(capped) == 3 * len(domains)


def test_canary_accuracy_matches_the_recipe_report(trained_router):
    """Routed one text at a time, as served, the probes score what the recipe measured on its test split
    (batch-embedded there); fixed tolerance 0.03."""
    domains = trained_router.config.domains
    router = build_router("onnx", artifacts_dir=trained_router.artifacts_dir, domains=domains)
    probes = load_probes(trained_router.artifacts_dir, "router", domains, ALL)
    canary = RoutingCanary(router, probes, domains, CanaryMetrics(CollectorRegistry()))
    per_domain = canary.run_once()
    correct = sum(round(per_domain[d] * sum(p.domain == d for p in probes)) for d in per_domain)
    held_out = _held_out(trained_router)
    expected = sum(ev["accuracy"] * ev["n"] for ev in held_out) / sum(ev["n"] for ev in held_out)
    assert abs(correct / len(probes) - expected) <= 0.03, (correct / len(probes), expected)


def test_router_service_exports_canary_accuracy_per_domain(trained_router):
    domains = trained_router.config.domains
    per_domain_cap = 5
    probes = load_probes(trained_router.artifacts_dir, "router", domains, per_domain_cap)
    router = build_router("onnx", artifacts_dir=trained_router.artifacts_dir, domains=domains)
    expected = RoutingCanary(router, probes, domains, CanaryMetrics(CollectorRegistry())).run_once()

    port = free_port()
    settings = {"domain_router": "onnx", "artifacts_dir": str(trained_router.artifacts_dir),
                "workers": [{"name": "base_model", "url": f"http://127.0.0.1:{free_port()}"}],
                "canary": {"interval_s": 1, "max_probes_per_domain": per_domain_cap}}
    proc = subprocess.Popen([sys.executable, "-m", "tandem.services.router", "--port", str(port), "--settings",
                             json.dumps(settings), "--log-level", "warning"], start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # no worker runs: the canary needs none, only the routing decision
            try:
                if (sample(url, "tandem_canary_runs_total") or 0) >= 2:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "no canary run within 120 s"
            time.sleep(0.5)
        for domain in domains:
            assert sample(url, "tandem_canary_probes", domain=domain) == per_domain_cap
            correct = sample(url, "tandem_canary_correct", domain=domain)
            assert correct / per_domain_cap == expected[domain]
            assert sample(url, "tandem_canary_confusion", actual=domain, predicted=domain) == correct
            assert sample(url, "tandem_canary_confusion", actual=domain) == per_domain_cap
        assert sample(url, "tandem_canary_last_run_timestamp_seconds") > time.time() - 30
    finally:
        proc.terminate()
        proc.wait(timeout=30)
