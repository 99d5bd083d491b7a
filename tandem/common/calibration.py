"""Confidence calibration shared by the domain router, answer confidence and compression reports.

Temperature scaling (Guo et al., 2017): one scalar T fitted on a dev split by minimising the
negative log-likelihood of softmax(logits / T). ECE: the gap between confidence and accuracy,
averaged over equal-width confidence bins.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising NLL of `labels` under softmax(`logits` / T); logits (N, C)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)

    def nll(log_t: float) -> float:
        scaled = log_softmax(logits / np.exp(log_t), axis=1)
        return float(-scaled[np.arange(len(labels)), labels].mean())

    result = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(result.x))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE over equal-width bins of `confidences` (the predicted class's probability)."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidences) == 0:
        raise ValueError("ECE needs at least one prediction")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(confidences[mask].mean() - correct[mask].mean())
    return float(ece)


def fit_binary_temperature(scores: np.ndarray, outcomes: np.ndarray) -> float:
    """Temperature for a binary confidence given as a logit score (e.g. mean token logprob)."""
    scores = np.asarray(scores, dtype=np.float64)
    logits = np.stack([np.zeros_like(scores), scores], axis=1)
    return fit_temperature(logits, np.asarray(outcomes, dtype=np.int64))
