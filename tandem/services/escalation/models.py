"""The escalation models as served: logistic regressions stored as JSON, applied with numpy.

Both predict P(the local route's answer is wrong), one model per domain (tandem.services.escalation.domains).
`DifficultyModel` reads the prompt (before generation); `AnswerConfidenceModel` reads the answer:
its token log-probabilities and its structure against the request (after). A domain without a
model gets no score (None), never another domain's. They are fitted by `tandem escalation train`
(scikit-learn, offline) and listed in the artifacts manifest as kind `escalation`; serving loads
only what the manifest lists, after checking its sha256.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from tandem.common.manifest import Manifest
from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.escalation.features import (
    ANSWER_NAMES,
    DENSE_NAMES,
    ROUTER_NAMES,
    answer_features,
    prompt_features,
)

DIFFICULTY_ENTRY = "escalation-difficulty"
ANSWER_ENTRY = "escalation-answer-confidence"
THRESHOLDS_ENTRY = "escalation-thresholds"
REFIT = "refit it with `tandem escalation train`"


class LogisticWeights(BaseModel):
    feature_names: list[str]
    mean: list[float]
    scale: list[float]
    dense_coef: list[float]
    hashed_coef: list[float] = []
    intercept: float
    tools: bool | None = None  # every training request offered tools (True), none did (False), or mixed

    def covers(self, request: ChatCompletionRequest) -> bool:
        """Whether `request` is like the labels: a model fitted only on tool requests (BFCL) knows
        nothing about a chat message without tools, and the other way round."""
        return self.tools is None or bool(request.tools) == self.tools

    def probability(self, dense: np.ndarray, hashed: np.ndarray | None = None) -> float:
        z = (dense - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(z @ np.asarray(self.dense_coef)) + self.intercept
        if hashed is not None and self.hashed_coef:
            logit += float(hashed @ np.asarray(self.hashed_coef))
        return float(1.0 / (1.0 + np.exp(-logit)))


class DomainWeights(BaseModel):
    """One model per domain that has enough labels; why the others have none."""

    models: dict[str, LogisticWeights]
    without_model: dict[str, str] = {}


def _check_features(weights: DomainWeights, expected: list[str], model: str) -> None:
    for domain, w in weights.models.items():
        if w.feature_names != expected:
            raise ValueError(f"the {model} model for '{domain}' was fitted on features {w.feature_names}; this "
                             f"version computes {expected}: {REFIT}")


class DifficultyModel:
    def __init__(self, weights: DomainWeights):
        _check_features(weights, DENSE_NAMES + ROUTER_NAMES, "difficulty")
        self.weights = weights

    def p_fail(self, request: ChatCompletionRequest, domain: str | None) -> float | None:
        """None when `domain` has no model of its own, or its labels were unlike `request`."""
        model = self.weights.models.get(domain or "")
        if model is None or not model.covers(request):
            return None
        dense, hashed = prompt_features(request)
        return model.probability(dense, hashed)


class AnswerConfidenceModel:
    def __init__(self, weights: DomainWeights):
        _check_features(weights, ANSWER_NAMES, "answer-confidence")
        self.weights = weights

    def p_fail(self, request: ChatCompletionRequest, answer: Answer, domain: str | None) -> float | None:
        """None when `domain` has no model of its own, or its labels were unlike `request`."""
        model = self.weights.models.get(domain or "")
        if model is None or not model.covers(request):
            return None
        return model.probability(answer_features(request, answer))


def load_weights(artifacts_dir: str | Path, entry: str) -> DomainWeights:
    path = Manifest(artifacts_dir).verified_path(entry)
    try:
        return DomainWeights.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise ValueError(f"{path} is not a per-domain escalation model (an older build fitted one model for "
                         f"all domains): {REFIT}") from exc


def load_thresholds(artifacts_dir: str | Path) -> dict[str, float | dict[str, float]]:
    """Thresholds chosen by `tandem escalation calibrate`: {policy: threshold, or {domain: threshold}}."""
    path = Manifest(artifacts_dir).verified_path(THRESHOLDS_ENTRY)
    return json.loads(path.read_text())["thresholds"]
