"""The validation stage (plan phase 5B): evaluate the built stack as served, gate it, report it.

One `tandem up --artifacts` serves the build; `tandem eval` scores the test split of each suite
through `model=auto` (router, modifiers and escalation as a client sees them; the contamination
guard reads the build's manifest). The figures (task scores, routing accuracy, latency, size,
escalation AUROC/CPT) are checked against the gates file, `report.md` / `report.html` are
written with their plots, and a failed gate fails the stage, so the pipeline stops there.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest, write_json
from tandem.pipeline.config import ValidateStage
from tandem.pipeline.dag import PipelineError
from tandem.pipeline.gates import GatesConfig, check_gates


class GateFailure(PipelineError):
    """At least one quality gate failed; the report says which."""


def served_figures(url: str, artifacts: Path, section: ValidateStage, out: Path) -> dict[str, Any]:
    """Scores, routing accuracy and latency measured through the served stack at `url`."""
    from tandem.eval.runner import run_eval
    from tandem.eval.settings import EvalSettings

    figures: dict[str, Any] = {}
    latencies: list[float] = []
    for suite, limit in section.suites.items():
        settings = EvalSettings(base_url=url, model="auto", suites=[suite], split="test", limit=limit,
                                concurrency=section.concurrency, out=out / "eval" / suite,
                                max_tokens=section.max_tokens, artifacts=artifacts, use_cache=False)
        summary = asyncio.run(run_eval(settings))["suites"][0]
        if suite == "routing":
            figures["routing.accuracy"] = summary.get("score")  # the routing suite scores 1 per right domain
        else:
            figures[f"task.{suite}"] = summary.get("score")
            if summary.get("latency_p95_s") is not None:
                figures[f"latency.{suite}.p95_s"] = summary["latency_p95_s"]
                latencies.append(summary["latency_p95_s"])
    if latencies:
        figures["latency.p95_s"] = max(latencies)
    return figures


def validate_build(artifacts: Path, base: Path, section: ValidateStage, gates: GatesConfig,
                   upstream: dict[str, dict[str, Any]], out: Path,
                   threads: int | None = None) -> tuple[list[Path], dict[str, Any]]:
    from tandem.pipeline.report import write_report
    from tandem.training.modifiers.task_eval import serving

    with serving(artifacts, threads=threads) as url:
        figures = served_figures(url, artifacts, section, out)
    figures["size.base_mb"] = base.stat().st_size / 1e6
    figures.update(escalation_figures(artifacts))
    verdicts = check_gates(gates, figures)
    write_json(out / "figures.json", {"figures": figures, "gates": verdicts})
    paths = write_report(out, figures, verdicts, upstream, artifacts)
    failed = [v for v in verdicts if not v["passed"]]
    if failed:
        raise GateFailure(f"{len(failed)} of {len(verdicts)} gates failed (report: {paths[0]}): "
                          + json.dumps([{k: v[k] for k in ('figure', 'value', 'bound')} for v in failed]))
    return [out / "figures.json", *paths], figures


def escalation_figures(artifacts: Path) -> dict[str, float]:
    """Escalation AUROCs and CPT(50%) from the manifest. With one model per domain, each domain's
    figure is reported and `escalation.<model>_auroc` is the lowest of them (a gate on it holds for
    every domain). Absent entries give no figure (and a gate on it fails as not measured)."""
    from tandem.common.manifest import ManifestError
    from tandem.services.escalation.models import ANSWER_ENTRY, DIFFICULTY_ENTRY, THRESHOLDS_ENTRY

    manifest, figures = Manifest(artifacts), {}
    for name, key in ((DIFFICULTY_ENTRY, "difficulty_auroc"), (ANSWER_ENTRY, "answer_confidence_auroc")):
        try:
            metrics = manifest.entry(name).metrics
        except ManifestError:
            continue
        if "auroc_heldout" in metrics:
            figures[f"escalation.{key}"] = metrics["auroc_heldout"]
            continue
        per_domain = {d: m["auroc_heldout"] for d, m in metrics.items()
                      if isinstance(m, dict) and m.get("auroc_heldout") is not None}
        figures.update({f"escalation.{key}.{d}": v for d, v in per_domain.items()})
        if per_domain:
            figures[f"escalation.{key}"] = min(per_domain.values())
    try:
        for policy, calibration in manifest.entry(THRESHOLDS_ENTRY).metrics.items():
            if isinstance(calibration, dict) and (calibration.get("cpt") or {}).get("50%") is not None:
                figures[f"escalation.{policy}.cpt50"] = calibration["cpt"]["50%"]
    except ManifestError:
        pass
    return figures
