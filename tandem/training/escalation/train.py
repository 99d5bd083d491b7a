"""Fit the escalation models on labels from train splits; measure them on held-out (dev) items.

One difficulty and one answer-confidence model per domain, each fitted only on the labels that
stand for that domain (tandem.services.escalation.domains); a domain without enough of them gets none, and
the report says why. Difficulty: logistic regression on prompt features (dense statistics + keyword-router
probabilities, standardised, plus hashed n-grams), its regularisation picked by 5-fold
cross-validated AUROC on the train labels. Answer confidence: logistic regression on the
answer's logprob statistics and structure checks (a calibrated probability by construction;
ECE reported). Each report also gives the *suite-prior* AUROC: held-out items scored by their
suite's failure rate on the train labels, i.e. what knowing only "which benchmark is this"
achieves. A model near it has found the between-suite signal and nothing within suites.
Weights go to `artifacts/escalation/*.json`, listed in the manifest with their figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tandem.common.calibration import expected_calibration_error
from tandem.common.manifest import Manifest, sha256_file, write_json
from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.features import (
    ANSWER_NAMES,
    DENSE_NAMES,
    ROUTER_NAMES,
    answer_features,
    prompt_features,
)
from tandem.services.escalation.models import (
    ANSWER_ENTRY,
    DIFFICULTY_ENTRY,
    AnswerConfidenceModel,
    DomainWeights,
    LogisticWeights,
)
from tandem.training.escalation.domain_labels import by_domain, why_no_model
from tandem.training.escalation.labels import LabelRow, answer_of, read_labels

C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)


class ModelReport(BaseModel):
    n_train: int
    n_heldout: int
    fail_rate_train: float
    fail_rate_heldout: float
    auroc_heldout: float
    accuracy_at_half: float
    auroc_by_suite: dict[str, float | None]
    n_by_suite: dict[str, int]
    suite_prior_auroc: float | None = None
    fail_rate_by_suite: dict[str, float] = {}
    C: float
    ece_heldout: float | None = None


class TrainReport(BaseModel):
    difficulty: dict[str, ModelReport]
    answer_confidence: dict[str, ModelReport]
    without_model: dict[str, str]
    labels_by_domain: dict[str, int]
    labels_for_no_domain: int

    def summary_line(self) -> str:
        parts = []
        for domain, d in self.difficulty.items():
            a = self.answer_confidence[domain]
            parts.append(f"{domain}: difficulty AUROC {d.auroc_heldout:.3f} (n={d.n_heldout} held out), answer "
                         f"confidence AUROC {a.auroc_heldout:.3f} (ECE {a.ece_heldout or float('nan'):.3f})")
        parts += [f"{domain}: no model ({why})" for domain, why in self.without_model.items()]
        return f"{'; '.join(parts)}; {self.labels_for_no_domain} train labels stand for no domain"


def request_of(row: LabelRow) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="auto", messages=row.messages, tools=row.tools)


def difficulty_matrix(rows: list[LabelRow]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [prompt_features(request_of(r)) for r in rows]
    return np.stack([d for d, _ in pairs]), np.stack([h for _, h in pairs])


def _auroc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def _pick_c(x: np.ndarray, y: np.ndarray) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    best, best_c = -1.0, 1.0
    for c in C_GRID:
        scores = []
        for tr, va in folds.split(x, y):
            model = LogisticRegression(C=c, max_iter=2000).fit(x[tr], y[tr])
            scores.append(roc_auc_score(y[va], model.predict_proba(x[va])[:, 1]))
        if np.mean(scores) > best:
            best, best_c = float(np.mean(scores)), c
    return best_c


def _fit(dense: np.ndarray, hashed: np.ndarray | None, y: np.ndarray, names: list[str]
         ) -> tuple[LogisticWeights, float]:
    mean, scale = dense.mean(axis=0), dense.std(axis=0) + 1e-6
    x = (dense - mean) / scale
    if hashed is not None:
        x = np.hstack([x, hashed])
    c = _pick_c(x, y)
    model = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    coef = model.coef_[0]
    n = dense.shape[1]
    return LogisticWeights(feature_names=names, mean=mean.tolist(), scale=scale.tolist(),
                           dense_coef=coef[:n].tolist(), hashed_coef=coef[n:].tolist(),
                           intercept=float(model.intercept_[0])), c


def _report(train: list[LabelRow], held: list[LabelRow], p_held: np.ndarray, c: float) -> ModelReport:
    y_train = np.array([r.fails for r in train], dtype=int)
    y_held = np.array([r.fails for r in held], dtype=int)
    suites = sorted({r.suite for r in held})
    by_suite = {s: np.array([r.suite == s for r in held]) for s in suites}
    train_rates = _suite_rates(train)
    return ModelReport(
        n_train=len(train), n_heldout=len(held), fail_rate_train=float(y_train.mean()),
        fail_rate_heldout=float(y_held.mean()), auroc_heldout=_auroc(y_held, p_held) or float("nan"),
        accuracy_at_half=float(((p_held >= 0.5) == y_held).mean()),
        auroc_by_suite={s: _auroc(y_held[m], p_held[m]) for s, m in by_suite.items()},
        n_by_suite={s: int(m.sum()) for s, m in by_suite.items()}, C=c,
        suite_prior_auroc=_auroc(y_held, np.array([train_rates.get(r.suite, y_train.mean()) for r in held])),
        fail_rate_by_suite={s: float(y_held[m].mean()) for s, m in by_suite.items()})


def _suite_rates(rows: list[LabelRow]) -> dict[str, float]:
    """Each suite's failure rate on `rows`."""
    fails: dict[str, list[bool]] = {}
    for r in rows:
        fails.setdefault(r.suite, []).append(r.fails)
    return {suite: float(np.mean(f)) for suite, f in fails.items()}


def _tools_in(rows: list[LabelRow]) -> bool | None:
    """True if every labelled request offered tools, False if none did, None if mixed."""
    offered = {bool(r.tools) for r in rows}
    return offered.pop() if len(offered) == 1 else None


def _fit_domain(domain: str, train: list[LabelRow], held: list[LabelRow]
                ) -> tuple[LogisticWeights, ModelReport, LogisticWeights, ModelReport]:
    """Both models for one domain's labels, and their held-out figures."""
    y = np.array([r.fails for r in train], dtype=int)
    dense, hashed = difficulty_matrix(train)
    difficulty, c_d = _fit(dense, hashed, y, DENSE_NAMES + ROUTER_NAMES)
    difficulty.tools = _tools_in(train)
    p_d = np.empty(0)
    if held:
        held_dense, held_hashed = difficulty_matrix(held)
        p_d = np.array([difficulty.probability(d, h) for d, h in zip(held_dense, held_hashed)])
    d_report = _report(train, held, p_d, c_d)

    train_a = [r for r in train if r.token_logprobs]
    held_a = [r for r in held if r.token_logprobs]
    a_dense = np.stack([answer_features(request_of(r), answer_of(r)) for r in train_a])
    answer, c_a = _fit(a_dense, None, np.array([r.fails for r in train_a], dtype=int), ANSWER_NAMES)
    answer.tools = _tools_in(train_a)
    served = AnswerConfidenceModel(DomainWeights(models={domain: answer}))
    p_a = np.array([served.p_fail(request_of(r), answer_of(r), domain) for r in held_a])
    a_report = _report(train_a, held_a, p_a, c_a)
    if held_a:
        correct = np.array([not r.fails for r in held_a], dtype=float)
        a_report.ece_heldout = expected_calibration_error(1.0 - p_a, correct, n_bins=10)
    return difficulty, d_report, answer, a_report


def train_escalation_models(train_path: Path, heldout_path: Path, artifacts: Path) -> TrainReport:
    train, held = read_labels(train_path), read_labels(heldout_path)
    if not train or not held:
        raise ValueError("both label files need rows")
    train_by, held_by = by_domain(train), by_domain(held)
    difficulty, answer = DomainWeights(models={}), DomainWeights(models={})
    d_reports: dict[str, ModelReport] = {}
    a_reports: dict[str, ModelReport] = {}
    for domain, rows in train_by.items():
        reason = why_no_model(rows)
        if reason is not None:
            difficulty.without_model[domain] = answer.without_model[domain] = reason
            continue
        (difficulty.models[domain], d_reports[domain], answer.models[domain],
         a_reports[domain]) = _fit_domain(domain, rows, held_by[domain])
    used = [r for domain in difficulty.models for r in train_by[domain]]
    report = TrainReport(difficulty=d_reports, answer_confidence=a_reports, without_model=difficulty.without_model,
                         labels_by_domain={d: len(rows) for d, rows in train_by.items()},
                         labels_for_no_domain=len(train) - sum(len(rows) for rows in train_by.values()))
    inputs = {"train_labels": {"path": str(train_path), "sha256": sha256_file(train_path)},
              "heldout_labels": {"path": str(heldout_path), "sha256": sha256_file(heldout_path)}}
    manifest = Manifest(artifacts)
    for entry, weights, figures in ((DIFFICULTY_ENTRY, difficulty, d_reports), (ANSWER_ENTRY, answer, a_reports)):
        path = write_json(artifacts / "escalation" / f"{entry.removeprefix('escalation-')}.json",
                          weights.model_dump())
        manifest.record(entry, "escalation", [path.resolve()], config={"C_grid": list(C_GRID), **inputs},
                        metrics={d: r.model_dump() for d, r in figures.items()},
                        extra={"trained_on": _trained_on(used)})
    write_json(artifacts / "escalation" / "train_report.json", report.model_dump())
    return report


def _trained_on(rows: list[LabelRow]) -> dict[str, list[str]]:
    """Dataset ids the models saw (the eval's contamination guard reads `extra.trained_on`)."""
    from tandem.eval.datasets import suite_dataset
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(suite_dataset(r.suite), []).append(r.id)
    return out


