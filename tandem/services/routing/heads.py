"""The router's two classifiers, as plain numpy so serving needs neither torch nor scikit-learn.

- `TokenHead` (first stage): logistic regression on which WordPiece tokens occur (presence,
  scaled by 1/sqrt(#distinct)) plus the request features. Microseconds; it answers alone when
  its calibrated confidence clears the threshold chosen on dev.
- `EmbeddingHead` (second stage): logistic regression on the MiniLM embedding plus the request
  features, and optionally the same token-presence vector (lexical + semantic in one model).

Both carry a temperature fitted on dev (tandem.common.calibration), so confidence is a probability.
The softmax is restated here because tandem.common.calibration imports scipy, which a serving
install (onnxruntime, tokenizers, numpy) does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def presence(ids: list[int]) -> tuple[np.ndarray, float]:
    """The distinct token ids of a text and the scale 1/sqrt(#distinct) their weights get."""
    unique = np.unique(np.asarray(ids, dtype=np.int64))
    return unique, 1.0 / np.sqrt(max(len(unique), 1))


def token_scores(token_weight: np.ndarray, token_ids: list[list[int]]) -> np.ndarray:
    rows = []
    for ids in token_ids:
        unique, scale = presence(ids)
        rows.append(token_weight[:, unique].sum(axis=1) * scale)
    return np.stack(rows)


@dataclass
class EmbeddingHead:
    weight: np.ndarray  # (classes, dim + features)
    bias: np.ndarray
    temperature: float = 1.0
    token_weight: np.ndarray | None = None  # (classes, vocab) when the head also reads tokens

    def logits(self, embeddings: np.ndarray, features: np.ndarray, token_ids: list[list[int]]) -> np.ndarray:
        logits = np.hstack([embeddings, features]) @ self.weight.T + self.bias
        if self.token_weight is not None:
            logits = logits + token_scores(self.token_weight, token_ids)
        return logits

    def probabilities(self, embeddings: np.ndarray, features: np.ndarray, token_ids: list[list[int]]) -> np.ndarray:
        return apply_temperature(self.logits(embeddings, features, token_ids), self.temperature)


@dataclass
class TokenHead:
    token_weight: np.ndarray  # (classes, vocab)
    feature_weight: np.ndarray  # (classes, features)
    bias: np.ndarray
    threshold: float = 1.01  # confidence at which it answers alone; > 1 means never
    temperature: float = 1.0

    def logits(self, token_ids: list[list[int]], features: np.ndarray) -> np.ndarray:
        return token_scores(self.token_weight, token_ids) + features @ self.feature_weight.T + self.bias

    def probabilities(self, token_ids: list[list[int]], features: np.ndarray) -> np.ndarray:
        return apply_temperature(self.logits(token_ids, features), self.temperature)


def save_heads(path: str | Path, embedding: EmbeddingHead, token: TokenHead) -> Path:
    path = Path(path)
    with open(path, "wb") as fh:
        emb_tokens = embedding.token_weight if embedding.token_weight is not None else np.zeros((0, 0))
        np.savez(fh, emb_weight=embedding.weight.astype(np.float32), emb_bias=embedding.bias.astype(np.float32),
                 emb_temperature=embedding.temperature, emb_token_weight=emb_tokens.astype(np.float32), tok_weight=token.token_weight.astype(np.float32),
                 tok_feature_weight=token.feature_weight.astype(np.float32), tok_bias=token.bias.astype(np.float32),
                 tok_threshold=token.threshold, tok_temperature=token.temperature)
    return path


def load_heads(path: str | Path) -> tuple[EmbeddingHead, TokenHead]:
    with np.load(path) as data:
        emb_tokens = data["emb_token_weight"]
        embedding = EmbeddingHead(data["emb_weight"], data["emb_bias"], float(data["emb_temperature"]),
                                  emb_tokens if emb_tokens.size else None)
        token = TokenHead(data["tok_weight"], data["tok_feature_weight"], data["tok_bias"],
                          float(data["tok_threshold"]), float(data["tok_temperature"]))
    return embedding, token
