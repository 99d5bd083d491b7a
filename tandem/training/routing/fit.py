"""Fitting the router's heads with scikit-learn (training side), then calibrating them on dev."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from tandem.common.calibration import apply_temperature, fit_temperature
from tandem.services.routing.heads import EmbeddingHead, TokenHead, presence


def _logistic(c: float, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression

    # Balanced weights: automation has far less public data than general, and a router that
    # ignores a small domain still looks accurate.
    return LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced", random_state=seed)


def _full_coefficients(model, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients for every class index, even if a small training slice lacks some class."""
    weight = np.zeros((n_classes, model.coef_.shape[1]), dtype=np.float64)
    bias = np.full(n_classes, -1e4)
    if len(model.classes_) == 2:  # sklearn stores one row for binary problems
        weight[model.classes_[1]], bias[model.classes_[1]] = model.coef_[0], model.intercept_[0]
        bias[model.classes_[0]] = 0.0
    else:
        weight[model.classes_], bias[model.classes_] = model.coef_, model.intercept_
    return weight, bias


def fit_embedding_head(embeddings: np.ndarray, features: np.ndarray, labels: np.ndarray, n_classes: int,
                       c: float, max_iter: int, seed: int = 0, token_ids: list[list[int]] | None = None,
                       vocab_size: int = 0, sample_weight: np.ndarray | None = None) -> EmbeddingHead:
    """Logistic regression on [embedding, features], plus token presence when `token_ids` are given."""
    dense = np.hstack([embeddings, features])
    if token_ids is None:
        model = _logistic(c, max_iter, seed).fit(dense, labels, sample_weight=sample_weight)
        weight, bias = _full_coefficients(model, n_classes)
        return EmbeddingHead(weight, bias)
    inputs = sparse.hstack([sparse.csr_matrix(dense), token_matrix(token_ids, np.zeros((len(dense), 0)), vocab_size)])
    model = _logistic(c, max_iter, seed).fit(inputs.tocsr(), labels, sample_weight=sample_weight)
    weight, bias = _full_coefficients(model, n_classes)
    return EmbeddingHead(weight[:, :dense.shape[1]], bias, token_weight=weight[:, dense.shape[1]:])


def token_matrix(token_ids: list[list[int]], features: np.ndarray, vocab_size: int) -> sparse.csr_matrix:
    rows, cols, vals = [], [], []
    for r, ids in enumerate(token_ids):
        unique, scale = presence(ids)
        rows += [r] * len(unique)
        cols += unique.tolist()
        vals += [scale] * len(unique)
    bag = sparse.csr_matrix((vals, (rows, cols)), shape=(len(token_ids), vocab_size))
    return sparse.hstack([bag, sparse.csr_matrix(features)]).tocsr()


def fit_token_head(token_ids: list[list[int]], features: np.ndarray, labels: np.ndarray, n_classes: int,
                   vocab_size: int, c: float, max_iter: int, seed: int = 0,
                   sample_weight: np.ndarray | None = None) -> TokenHead:
    model = _logistic(c, max_iter, seed).fit(token_matrix(token_ids, features, vocab_size), labels,
                                             sample_weight=sample_weight)
    weight, bias = _full_coefficients(model, n_classes)
    return TokenHead(weight[:, :vocab_size], weight[:, vocab_size:], bias)


MARGIN_GRID = np.arange(0.0, 3.01, 0.25)


def fit_heads(recipe, embeddings: np.ndarray, features: np.ndarray, token_ids: list[list[int]], labels: np.ndarray,
              train: np.ndarray, weight: np.ndarray, vocab_size: int) -> tuple[EmbeddingHead, TokenHead]:
    """Both heads on the `train` rows, as the recipe (`RouterRecipeConfig`) configures them."""
    n_classes = len(recipe.domains)
    train_ids = [token_ids[i] for i in np.flatnonzero(train)]
    emb_head = fit_embedding_head(embeddings[train], features[train], labels[train], n_classes, recipe.head.c,
                                  recipe.head.max_iter, recipe.seed, train_ids if recipe.head.tokens else None,
                                  vocab_size, weight[train])
    tok_head = fit_token_head(train_ids, features[train], labels[train], n_classes, vocab_size, recipe.head.token_c,
                              recipe.head.max_iter, recipe.seed, weight[train])
    return emb_head, tok_head


def calibration_rows(calibrate_on: str, real: np.ndarray, dev: np.ndarray,
                     origin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for the default domain's margin, the temperatures and the cascade threshold.

    `real_dev`: the real dev rows that do not train, for margin and temperature, and all dev rows for
    the cascade; the earlier recipe: the templates' dev split for the margin and the benchmark dev
    split for the temperature and the cascade (it had no real rows in dev).
    """
    if calibrate_on == "real_dev":
        return real & dev, real & dev, dev
    return dev & (origin == "template"), dev & ~real, dev & ~real


def choose_default_margin(logits: np.ndarray, labels: np.ndarray, default_index: int) -> float:
    """How far to lower the default (catch-all) domain's logit.

    The public data makes `general` by far the broadest class, so a prompt unlike any benchmark
    falls to it. The margin is chosen on held-out realistic prompts (the real-prompt dev rows, or
    in the earlier recipe the dev split of the project templates), maximising accuracy; ties go to
    the smaller margin.
    """
    def accuracy(margin: float) -> float:
        shifted = logits.copy()
        shifted[:, default_index] -= margin
        return float((shifted.argmax(axis=1) == labels).mean())

    return float(max(MARGIN_GRID, key=lambda m: (accuracy(m), -m))) if len(labels) else 0.0


def calibrate(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature fitted on dev logits."""
    return fit_temperature(logits, labels)


def choose_threshold(logits: np.ndarray, labels: np.ndarray, temperature: float, min_precision: float) -> float:
    """The lowest confidence from which the first stage's dev accuracy, over the requests it would
    answer alone, stays at or above `min_precision` for every higher threshold too; above 1 (never
    answer alone) if even the most confident requests fall short."""
    probs = apply_temperature(logits, temperature)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    chosen = 1.01
    for threshold in np.round(np.arange(0.995, 0.499, -0.005), 3):
        taken = confidence >= threshold
        if taken.sum() < 20:
            continue
        if correct[taken].mean() < min_precision:
            break
        chosen = float(threshold)
    return chosen
