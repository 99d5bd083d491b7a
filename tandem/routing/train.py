"""`tandem router train`: the domain-router recipe (setup -> run -> save).

1. Data: public sources labelled per the config + templated prompts, split by source item
   (tandem.eval.splits); the hand-written set is evaluation only.
2. Export MiniLM to ONNX, int8; embed every example with that very graph (what serving runs).
3. Fit the embedding head and the bag-of-tokens first stage on train; temperatures and the
   first stage's threshold on dev.
4. Evaluate on test and the hand-written set beside the keyword and nearest-centroid baselines;
   measure latency; write heads, metadata, report and the manifest entry.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tandem.common.calibration import apply_temperature
from tandem.common.manifest import Manifest, write_json
from tandem.common.recipe_config import dump_config
from tandem.routing import evaluate, fit
from tandem.routing.config import RouterRecipeConfig
from tandem.routing.dataset import build_examples, counts, load_handwritten, text_key
from tandem.routing.embedding_cache import cached_embeddings
from tandem.routing.encoder import OnnxEncoder
from tandem.routing.examples import RoutingExample
from tandem.routing.export import export_encoder
from tandem.routing.features import FEATURE_NAMES, request_features
from tandem.routing.heads import save_heads

log = logging.getLogger(__name__)


def _embed(encoder: OnnxEncoder, ids: list[list[int]], batch_size: int) -> np.ndarray:
    chunk = max(batch_size * 16, 512)
    parts = [encoder.encode_ids(ids[i:i + chunk], batch_size)
             for i in tqdm(range(0, len(ids), chunk), desc="embedding", unit="chunk")]
    return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)


def _ece_figures(logits: np.ndarray, y: np.ndarray, masks: dict[str, np.ndarray],
                 temperature: float) -> dict[str, float]:
    figures = {}
    for split, mask in masks.items():
        figures[f"ece_{split}_before"] = evaluate.ece(y[mask], apply_temperature(logits[mask], 1.0))
        figures[f"ece_{split}_after"] = evaluate.ece(y[mask], apply_temperature(logits[mask], temperature))
    return figures


def _evaluate_all(probs: dict[str, np.ndarray], y: np.ndarray, sets: dict[str, np.ndarray],
                  domains: list[str]) -> dict[str, dict[str, Any]]:
    return {name: {s: evaluate.classification_metrics(y[mask], p[mask], domains) for s, mask in sets.items()}
            for name, p in probs.items()}


def run(config: RouterRecipeConfig, measure_latency: bool = True) -> dict[str, Any]:
    domains = config.domains
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    log.info("building routing data from %d sources", len(config.sources))
    handwritten = load_handwritten(config.handwritten)
    held_out = {text_key(ex.text) for ex in handwritten}
    examples = [ex for ex in build_examples(config) if ex.split == "test" or text_key(ex.text) not in held_out]
    table = counts(examples)
    log.info("examples per split/domain: %s", json.dumps(table))
    everything: list[RoutingExample] = examples + handwritten
    unknown = sorted({ex.domain for ex in handwritten} - set(domains))
    if unknown:
        log.warning("hand-written rows labelled %s are outside the configured domains and are skipped", unknown)
        everything = [ex for ex in everything if ex.domain in domains]

    model_path, tokenizer_path = export_encoder(out, quantize=config.encoder.quantize)
    encoder = OnnxEncoder(model_path, tokenizer_path, config.encoder.max_tokens, threads=os.cpu_count() or 1)
    ids = encoder.token_ids([ex.text for ex in everything])
    embeddings = cached_embeddings(model_path, config.encoder.max_tokens, config.batch_size,
                                   [ex.text for ex in everything],
                                   lambda todo: _embed(encoder, [ids[i] for i in todo], config.batch_size))
    features = np.stack([request_features(ex.text, ex.tools) for ex in everything])
    y = np.array([domains.index(ex.domain) for ex in everything])
    split = np.array(["handwritten" if ex.origin == "handwritten" else ex.split for ex in everything])
    train, dev = split == "train", split == "dev"
    sets = {"test": split == "test", "handwritten": split == "handwritten",
            "test_public": (split == "test") & np.array([ex.origin == "public" for ex in everything]),
            "test_template": (split == "test") & np.array([ex.origin == "template" for ex in everything])}
    sets = {name: mask for name, mask in sets.items() if mask.any()}

    log.info("fitting heads on %d train examples", int(train.sum()))
    train_ids = [ids[i] for i in np.flatnonzero(train)]
    vocab = encoder.tokenizer.get_vocab_size()
    emb_head = fit.fit_embedding_head(embeddings[train], features[train], y[train], len(domains), config.head.c,
                                      config.head.max_iter, config.seed, train_ids if config.head.tokens else None,
                                      vocab)
    tok_head = fit.fit_token_head(train_ids, features[train], y[train], len(domains), vocab, config.head.token_c,
                                  config.head.max_iter, config.seed)
    # The default domain's margin is chosen on the templates' dev split (realistic phrasing the heads
    # never saw), then the temperature on all of dev; see fit.choose_default_margin.
    realistic_dev = dev & np.array([ex.origin == "template" for ex in everything])
    default = domains.index(config.default_domain)
    emb_logits = emb_head.logits(embeddings, features, ids)
    tok_logits = tok_head.logits(ids, features)
    calibration = {}
    for name, head, logits in (("second-stage", emb_head, emb_logits), ("first-stage", tok_head, tok_logits)):
        margin = fit.choose_default_margin(logits[realistic_dev], y[realistic_dev], default)
        head.bias[default] -= margin
        logits[:, default] -= margin
        head.temperature = fit.calibrate(logits[dev], y[dev])
        calibration[name] = {"default_margin": margin, "temperature": round(head.temperature, 4),
                             **_ece_figures(logits, y, {"dev": dev, "test": sets["test"]}, head.temperature)}
    emb_probs = apply_temperature(emb_logits, emb_head.temperature)
    tok_probs = apply_temperature(tok_logits, tok_head.temperature)
    if config.cascade.enabled:
        tok_head.threshold = fit.choose_threshold(tok_logits[dev], y[dev], tok_head.temperature,
                                                  config.cascade.min_precision)
    first = tok_probs.max(axis=1) >= tok_head.threshold
    router_probs = np.where(first[:, None], tok_probs, emb_probs)

    probs = {"router": router_probs, "second-stage": emb_probs, "first-stage": tok_probs,
             "keywords": evaluate.keyword_probs(everything, domains),
             "nearest-centroid": evaluate.centroid_probs(embeddings[train], y[train], embeddings, len(domains))}
    if config.head.tokens:  # ablation: what the token presence adds to the embedding
        plain = fit.fit_embedding_head(embeddings[train], features[train], y[train], len(domains), config.head.c,
                                       config.head.max_iter, config.seed)
        plain.temperature = fit.calibrate(plain.logits(embeddings, features, ids)[dev], y[dev])
        probs["embedding-only"] = plain.probabilities(embeddings, features, ids)
    evaluations = _evaluate_all(probs, y, sets, domains)
    hw = np.flatnonzero(sets.get("handwritten", np.zeros(len(y), bool)))
    mistakes = [{"prompt": everything[i].text, "true": domains[y[i]], "predicted": domains[router_probs[i].argmax()],
                 "confidence": round(float(router_probs[i].max()), 3)} for i in hw if router_probs[i].argmax() != y[i]]

    heads_path = save_heads(out / "heads.npz", emb_head, tok_head)
    meta_path = write_json(out / "router.json", {
        "domains": domains, "max_tokens": config.encoder.max_tokens, "threads": config.encoder.threads,
        "feature_names": FEATURE_NAMES, "cascade": config.cascade.enabled, "encoder": "all-MiniLM-L6-v2",
        "quantized": config.encoder.quantize})
    # The held-out test split ships with the artifact: the serving router's canary routes it on a
    # schedule (tandem/services/router/canary.py) to export live routing accuracy per domain.
    probes_path = out / "probes.jsonl"
    probes_path.write_text("".join(ex.model_dump_json(include={"text", "domain", "tools"}) + "\n"
                                   for ex in everything if ex.split == "test" and ex.origin != "handwritten"))
    files = [p.resolve() for p in (model_path, tokenizer_path, heads_path, meta_path)]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    report: dict[str, Any] = {
        "name": config.name, "domains": domains, "max_tokens": config.encoder.max_tokens,
        "encoder": f"all-MiniLM-L6-v2 ONNX {'int8 (per-channel, dynamic)' if config.encoder.quantize else 'fp32'}",
        "size_mb": round(size_mb, 3), "counts": table, "evaluations": evaluations, "calibration": calibration,
        "cascade": {"enabled": config.cascade.enabled, "threshold": tok_head.threshold,
                    "coverage": {s: round(float(first[m].mean()), 3) for s, m in sets.items()}},
        "handwritten_mistakes": mistakes}
    _record(config, [*files, probes_path.resolve()], report, everything)  # size_mb: the model files only
    if measure_latency:
        from tandem.routing.latency import measure, prompt_pool
        from tandem.routing.onnx_router import OnnxRouter

        router = OnnxRouter(config.artifacts_dir, domains, entry=config.name)
        texts = prompt_pool([ex.text for ex in handwritten], [ex.text for ex in everything if ex.split == "test"])
        report["latency"] = measure(router, texts, per_bucket=100)
    write_json(out / "config.json", dump_config(config))
    evaluate.write_report(out, report, domains)
    return report


def _record(config: RouterRecipeConfig, files: list[Path], report: dict[str, Any],
            examples: list[RoutingExample]) -> None:
    ev = report["evaluations"]["router"]
    metrics = {"accuracy_test": ev["test"]["accuracy"], "size_mb": report["size_mb"],
               "ece_test": report["calibration"]["second-stage"]["ece_test_after"]}
    if "handwritten" in ev:
        metrics["accuracy_handwritten"] = ev["handwritten"]["accuracy"]
    trained_on = sorted({ex.dataset for ex in examples if ex.split in ("train", "dev")})
    Manifest(config.artifacts_dir).record(
        name=config.name, kind="router", files=files, config=dump_config(config), metrics=metrics,
        extra={"trained_on": {d: ["train", "dev"] for d in trained_on}})
