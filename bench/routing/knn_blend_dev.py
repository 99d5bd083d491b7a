"""Offline, real DEV rows only: blend a built router's embedding head with a kNN vote over the real
training rows (docs/ROUTER.md, "Encoder fine-tuning"). Needs the run's embeddings in the cache.

    python bench/routing/knn_blend_dev.py build/i22/lora_s0 encoder.lora=build/i22/lora_ht_s0.npz encoder.truncation=head_tail
"""
# ruff: noqa  (the experiment's script kept as it ran)
import sys, json, numpy as np
from pathlib import Path
from tandem.common.recipe_config import load_config
from tandem.training.routing.config import RouterRecipeConfig
from tandem.training.routing.dataset import routing_data
from tandem.services.routing.encoder import OnnxEncoder
from tandem.training.routing.embedding_cache import cached_embeddings
from tandem.services.routing.features import request_features
from tandem.services.routing.heads import load_heads, apply_temperature
art = Path(sys.argv[1]); overrides = sys.argv[2:]
config = load_config(RouterRecipeConfig, "configs/routing/router.yaml", overrides)
rows, _ = routing_data(config)
rows = [r for r in rows if r.dataset != "real_test"]  # never
meta = json.loads((art / "router/router.json").read_text())
lora = art / "router/encoder_lora.npz" if meta.get("encoder_lora") else None
enc = OnnxEncoder(art / "router/encoder.onnx", art / "router/tokenizer.json", meta["max_tokens"], 2, meta["truncation"], lora_path=lora)
texts = [r.text for r in rows]
E = cached_embeddings(art / "router/encoder.onnx", meta["max_tokens"], 1, texts, lambda todo: (_ for _ in ()).throw(RuntimeError(f"{len(todo)} not cached")), meta["truncation"], lora)
ids = enc.token_ids(texts)
F = np.stack([request_features(r.text, r.tools) for r in rows])
emb, tok = load_heads(art / "router/heads.npz")
D = config.domains; y = np.array([D.index(r.domain) for r in rows])
held = np.array([r.dataset == "real_dev" and r.split == "dev" for r in rows])
bank = np.array([r.origin == "real" and r.split == "train" for r in rows])
P = emb.probabilities(E, F, ids)
Pt = tok.probabilities(ids, F); first = Pt.max(1) >= tok.threshold
R = np.where(first[:, None], Pt, P)
print("held-out dev n", held.sum(), "bank n", bank.sum())
print("router", (R[held].argmax(1) == y[held]).mean(), "second-stage", (P[held].argmax(1) == y[held]).mean())
S = E[held] @ E[bank].T; yb = y[bank]
for k in (5, 10, 20):
    top = np.argsort(-S, 1)[:, :k]
    V = np.zeros((held.sum(), len(D)))
    for j in range(k):
        V[np.arange(len(top)), yb[top[:, j]]] += np.exp(10 * S[np.arange(len(top)), top[:, j]])
    V /= V.sum(1, keepdims=True)
    print(k, {a: round(float((((1 - a) * P[held] + a * V).argmax(1) == y[held]).mean()), 3) for a in (0.2, 0.3, 0.5, 0.7)})
