"""The escalation models as served: logistic regressions stored as JSON, applied with numpy.

Both predict P(the local route's answer is wrong). `DifficultyModel` reads the prompt (before
generation); `AnswerConfidenceModel` reads the answer: its token log-probabilities and its
structure against the request (after). They are
fitted by `tandem escalation train` (scikit-learn, offline) and listed in the artifacts manifest
as kind `escalation`; serving loads only what the manifest lists, after checking its sha256.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from tandem.common.manifest import Manifest
from tandem.common.wire import ChatCompletionRequest
from tandem.escalation.answers import Answer
from tandem.escalation.features import (
    ANSWER_NAMES,
    DENSE_NAMES,
    ROUTER_NAMES,
    answer_features,
    prompt_features,
)

DIFFICULTY_ENTRY = "escalation-difficulty"
ANSWER_ENTRY = "escalation-answer-confidence"
THRESHOLDS_ENTRY = "escalation-thresholds"


class LogisticWeights(BaseModel):
    feature_names: list[str]
    mean: list[float]
    scale: list[float]
    dense_coef: list[float]
    hashed_coef: list[float] = []
    intercept: float

    def probability(self, dense: np.ndarray, hashed: np.ndarray | None = None) -> float:
        z = (dense - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(z @ np.asarray(self.dense_coef)) + self.intercept
        if hashed is not None and self.hashed_coef:
            logit += float(hashed @ np.asarray(self.hashed_coef))
        return float(1.0 / (1.0 + np.exp(-logit)))


def _check_features(weights: LogisticWeights, expected: list[str], model: str) -> None:
    if weights.feature_names != expected:
        raise ValueError(f"the {model} model was fitted on features {weights.feature_names}; this version "
                         f"computes {expected}: refit it with `tandem escalation train`")


class DifficultyModel:
    def __init__(self, weights: LogisticWeights):
        _check_features(weights, DENSE_NAMES + ROUTER_NAMES, "difficulty")
        self.weights = weights

    def p_fail(self, request: ChatCompletionRequest) -> float:
        dense, hashed = prompt_features(request)
        return self.weights.probability(dense, hashed)


class AnswerConfidenceModel:
    def __init__(self, weights: LogisticWeights):
        _check_features(weights, ANSWER_NAMES, "answer-confidence")
        self.weights = weights

    def p_fail(self, request: ChatCompletionRequest, answer: Answer) -> float:
        return self.weights.probability(answer_features(request, answer))


def load_weights(artifacts_dir: str | Path, entry: str) -> LogisticWeights:
    path = Manifest(artifacts_dir).verified_path(entry)
    return LogisticWeights.model_validate_json(path.read_text())


def load_thresholds(artifacts_dir: str | Path) -> dict[str, float]:
    """Thresholds chosen by `tandem escalation calibrate`: {policy name: threshold}."""
    path = Manifest(artifacts_dir).verified_path(THRESHOLDS_ENTRY)
    return json.loads(path.read_text())["thresholds"]
