"""`tandem escalation calibrate`: on held-out labels, the cost/quality curve of each escalation
model of each domain (on that domain's held-out labels only, tandem.services.escalation.domains), its APGR
and CPT(50/80/95%), and the threshold meeting the user's target; written to `artifacts/escalation/`
(thresholds.json: one threshold per policy and domain; calibration.json, curve.png) and the
manifest.

The strong model's per-item scores come from `--strong` labels (the fallback run over the same
items) or, where no paid upstream is reachable, from the benchmark's gold answers (score 1 on
every item). The code path is the same; the report names the source used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from tandem.common.manifest import Manifest, sha256_file, write_json
from tandem.services.escalation.models import (
    ANSWER_ENTRY,
    DIFFICULTY_ENTRY,
    THRESHOLDS_ENTRY,
    AnswerConfidenceModel,
    DifficultyModel,
    load_weights,
)
from tandem.training.escalation.curves import Curve, escalation_curve, pick_index
from tandem.training.escalation.domain_labels import label_domain
from tandem.training.escalation.labels import LabelRow, answer_of, read_labels
from tandem.training.escalation.plot import plot_curves
from tandem.training.escalation.train import request_of


class PolicyCalibration(BaseModel):
    n: int
    apgr: float
    cpt: dict[str, float | None]
    threshold: float
    escalation_rate: float
    quality_at_threshold: float
    pgr_at_threshold: float
    detection_rate: float  # share of local failures escalated
    false_escalation_rate: float  # share of local successes escalated
    accuracy_at_threshold: float  # escalate == fails


class CalibrationReport(BaseModel):
    target: dict[str, float]
    strong_source: str
    policies: dict[str, dict[str, PolicyCalibration]]  # policy -> domain -> calibration

    def summary_line(self) -> str:
        parts = [f"{name}/{domain}: threshold {p.threshold:.3f}, escalates {p.escalation_rate:.1%}, APGR "
                 f"{p.apgr:.3f}, CPT50/80/95 {'/'.join('-' if v is None else f'{v:.0%}' for v in p.cpt.values())}"
                 for name, by_domain in self.policies.items() for domain, p in by_domain.items()]
        return f"strong={self.strong_source}; " + ("; ".join(parts) or "no domain has a model")


def _calibrate(scores: np.ndarray, rows: list[LabelRow], strong: np.ndarray, target: tuple[str, float]
               ) -> tuple[PolicyCalibration, Curve]:
    weak = np.array([r.score for r in rows])
    fails = np.array([r.fails for r in rows])
    curve = escalation_curve(scores, weak, strong)
    k = pick_index(curve, target)
    threshold = curve.thresholds[k]
    escalated = scores >= threshold
    return PolicyCalibration(
        n=len(rows), apgr=curve.apgr, cpt=curve.cpt, threshold=threshold,
        escalation_rate=float(escalated.mean()), quality_at_threshold=curve.quality[k],
        pgr_at_threshold=curve.pgr[k],
        detection_rate=float(escalated[fails].mean()) if fails.any() else 0.0,
        false_escalation_rate=float(escalated[~fails].mean()) if (~fails).any() else 0.0,
        accuracy_at_threshold=float((escalated == fails).mean())), curve


def _strong_scores(rows: list[LabelRow], strong_path: Path | None) -> tuple[np.ndarray, str]:
    if strong_path is None:
        return np.ones(len(rows)), "gold answers (no paid upstream reached)"
    by_key = {(r.suite, r.id): r.score for r in read_labels(strong_path)}
    missing = [r.id for r in rows if (r.suite, r.id) not in by_key]
    if missing:
        raise ValueError(f"--strong lacks {len(missing)} held-out items, e.g. {missing[:3]}")
    return np.array([by_key[(r.suite, r.id)] for r in rows]), f"labels {strong_path}"


def calibrate_threshold(heldout: Path, artifacts: Path, target: tuple[str, float],
                        strong_path: Path | None = None) -> CalibrationReport:
    rows = read_labels(heldout)
    difficulty = DifficultyModel(load_weights(artifacts, DIFFICULTY_ENTRY))
    answer = AnswerConfidenceModel(load_weights(artifacts, ANSWER_ENTRY))
    strong, source = _strong_scores(rows, strong_path)
    policies: dict[str, dict[str, PolicyCalibration]] = {"difficulty": {}, "answer_confidence": {}}
    curves: dict[str, Curve] = {}
    for domain in difficulty.weights.models:
        idx = [i for i, r in enumerate(rows) if label_domain(r) == domain]
        if not idx:
            raise ValueError(f"the held-out labels have no '{domain}' rows to calibrate its threshold on")
        scored = {
            "difficulty": [(i, difficulty.p_fail(request_of(rows[i]), domain)) for i in idx],
            "answer_confidence": [(i, answer.p_fail(request_of(rows[i]), answer_of(rows[i]), domain))
                                  for i in idx if rows[i].token_logprobs],
        }
        for name, pairs in scored.items():
            covered = [(i, p) for i, p in pairs if p is not None]  # rows unlike the labels get no score
            subset = [i for i, _ in covered]
            policies[name][domain], curves[f"{name}/{domain}"] = _calibrate(
                np.array([p for _, p in covered]), [rows[i] for i in subset], strong[subset], target)
    report = CalibrationReport(target={target[0]: target[1]}, strong_source=source, policies=policies)
    out = artifacts / "escalation"
    thresholds = write_json(out / "thresholds.json", {
        "thresholds": {name: {d: p.threshold for d, p in by_domain.items()} for name, by_domain in policies.items()},
        "target": report.target, "strong_source": source})
    details = write_json(out / "calibration.json", {"report": report.model_dump(),
                                                    "curves": {n: c.model_dump() for n, c in curves.items()}})
    png = plot_curves(curves, out / "curve.png", source)
    files = [path.resolve() for path in (thresholds, details, png)]
    Manifest(artifacts).record(THRESHOLDS_ENTRY, "escalation", files,
                               config={"heldout": str(heldout), "heldout_sha256": sha256_file(heldout),
                                       "target": report.target, "strong_source": source},
                               metrics=report.model_dump()["policies"])
    return report
