"""A trained tool-fit model, a candidate check for the router's tool guard: P(the called function fits).

    python -m tandem.training.modifiers.tool_fit_model --out build/tool-fit      # ~2 min on 2 cores
    python -m tandem.training.modifiers.guard_replay --matrix M.json.gz --fit-model build/tool-fit/tool_fit.npz ...

Raw cosine between a request and a function's description (the guard's first check) cannot tell a
topical neighbour from the function asked for: a derivative function offered for an area-under-a-
curve question scores as high as the right one. This fits a logistic regression on pair features
of the guard's own embeddings (`[u * v, |u - v|, cos]`: the packaged int8 MiniLM, the guard's texts)
to BFCL's *train* split only, all BFCL-written text so that phrasing does not separate the classes:
positives are a request with each of its gold functions; negatives are the same request with each
offered function that is not gold, and with the tools of its `bfcl_no_fit` and `bfcl_no_fit_near`
partners (the automation recipe's no-fit rows). The threshold is chosen on dev pairs only: the
largest t at which `--recall` of the BFCL dev calls' gold functions score >= t. Run 10 in
docs/MODIFIERS.md registered all of this before the model was fitted.

Writes `tool_fit.npz` (weights, bias, threshold) and `tool_fit.json` (the manifest: inputs, counts,
dev figures, the sha256 of the weights). It is replayed on recorded answers (`guard_replay
--fit-model`), not served: run 10 showed it trips none of the calls the guard should have stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tandem.common.manifest import sha256_file
from tandem.services.router.tool_guard import function_text
from tandem.training.modifiers.gate import threshold_for_recall

REGULARISATION_C = 1.0


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Features of (request, function) embedding pairs, rows of L2-normalised vectors: [u*v, |u-v|, cos]."""
    return np.hstack([u * v, np.abs(u - v), np.sum(u * v, axis=1, keepdims=True)])


class FitModel(NamedTuple):
    """Logistic regression on `pair_features`; a call fits when its probability reaches `threshold`."""

    weights: np.ndarray
    bias: float
    threshold: float

    def probability(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(features @ self.weights + self.bias)))

    def call_fit(self, guard, body, message: dict) -> float | None:
        """Lowest P(fit) of the functions `message` calls, from the guard's own embeddings (None: no call)."""
        vectors = guard.call_vectors(body, message)
        if vectors is None:
            return None
        request = np.repeat(vectors[:1], len(vectors) - 1, axis=0)
        return float(self.probability(pair_features(request, vectors[1:])).min())

    def save(self, path: Path) -> None:
        np.savez(path, weights=self.weights, bias=np.float32(self.bias), threshold=np.float32(self.threshold))

    @classmethod
    def load(cls, path: Path) -> FitModel:
        with np.load(path) as data:
            return cls(data["weights"].astype(np.float32), float(data["bias"]), float(data["threshold"]))


def training_pairs(split: str = "train") -> list[tuple[str, str, int]]:
    """(request, function text, fits) for BFCL items of `split` and the recipe's no-fit partners."""
    from tandem.eval.datasets import load_items
    from tandem.training.modifiers.data.automation import (
        _request_text,
        gold_function_names,
        near_no_fit_rows,
        no_fit_rows,
    )

    pairs: list[tuple[str, str, int]] = []
    for item in sorted((it for it in load_items("bfcl", split=split) if it.gold and it.tools), key=lambda it: it.id):
        request, gold = _request_text(item), gold_function_names(item)
        for tool in item.tools:
            name = tool["function"]["name"]
            pairs.append((request, function_text(item.tools, name), int(name.replace(".", "_") in gold)))
    for row in [*no_fit_rows(split), *near_no_fit_rows(split)]:
        request = _request_text(row)
        pairs += [(request, function_text(row.tools, t["function"]["name"]), 0) for t in row.tools]
    return pairs


def dev_pairs(no_fit_limit: int = 200, no_fit_max_chars: int = 4000) -> list[tuple[str, str, int]]:
    """The dev calls' gold functions (fit) and the dev live_irrelevance requests' offered functions (no fit):
    the items `scale_select` chooses a modifier's scale and guard on."""
    from tandem.eval.datasets import load_items
    from tandem.training.modifiers.data.automation import _request_text, gold_function_names
    from tandem.training.modifiers.scale_select import live_irrelevance_items

    pairs = []
    for item in sorted((it for it in load_items("bfcl", split="dev") if it.gold and it.tools), key=lambda it: it.id):
        request = _request_text(item)
        pairs += [(request, function_text(item.tools, name), 1) for name in sorted(gold_function_names(item))]
    for item in live_irrelevance_items(no_fit_limit, no_fit_max_chars):
        request = _request_text(item)
        pairs += [(request, function_text(item.tools, t["function"]["name"]), 0) for t in item.tools]
    return pairs


def embed_pairs(encoder, pairs: list[tuple[str, str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Pair features and labels; each distinct text is embedded once, alone (batch 1: int8 dynamic
    quantization scales activations per call)."""
    from tqdm import tqdm

    texts = sorted({t for request, fn, _ in pairs for t in (request, fn)})
    vectors = {t: encoder.encode([t])[0] for t in tqdm(texts, desc="embedding", unit="text")}
    u = np.stack([vectors[r] for r, _, _ in pairs])
    v = np.stack([vectors[f] for _, f, _ in pairs])
    return pair_features(u, v), np.array([y for _, _, y in pairs])


def fit(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=5000)
    model.fit(features, labels)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def main(argv: list[str] | None = None) -> int:
    from sklearn.metrics import roc_auc_score

    from tandem.services.router.tool_guard import guard_encoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for tool_fit.npz and tool_fit.json")
    parser.add_argument("--recall", type=float, default=0.9,
                        help="share of the dev fitting calls the threshold keeps (default 0.9, as registered)")
    args = parser.parse_args(argv)
    started = time.time()
    encoder = guard_encoder()
    train = training_pairs()
    dev = dev_pairs()
    print(f"pairs: train {len(train)} ({sum(y for *_, y in train)} fit), dev {len(dev)} ({sum(y for *_, y in dev)} fit)")
    x_train, y_train = embed_pairs(encoder, train)
    x_dev, y_dev = embed_pairs(encoder, dev)
    weights, bias = fit(x_train, y_train)
    model = FitModel(weights, bias, threshold=0.0)
    p_dev = model.probability(x_dev)
    threshold = threshold_for_recall(p_dev[y_dev == 1], args.recall)
    cosine_dev = x_dev[:, -1]
    report = {
        "model": "logistic regression on [u*v, |u-v|, cos] of packaged int8 MiniLM embeddings",
        "regularisation_c": REGULARISATION_C, "recall_target": args.recall, "threshold": threshold,
        "train": {"pairs": len(train), "fit": int(y_train.sum()), "split": "bfcl train + no-fit partners",
                  "auroc": float(roc_auc_score(y_train, model.probability(x_train)))},
        "dev": {"pairs": len(dev), "fit": int(y_dev.sum()),
                "auroc_model": float(roc_auc_score(y_dev, p_dev)),
                "auroc_cosine": float(roc_auc_score(y_dev, cosine_dev)),
                "fit_kept": float(np.mean(p_dev[y_dev == 1] >= threshold)),
                "no_fit_below": float(np.mean(p_dev[y_dev == 0] < threshold))},
        "wall_s": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    FitModel(weights, bias, threshold).save(args.out / "tool_fit.npz")
    report["sha256"] = sha256_file(args.out / "tool_fit.npz")
    (args.out / "tool_fit.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("threshold", "train", "dev")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
