"""The loop's router part: feedback that names the right domain -> labelled router rows -> a refit of
the served router's heads -> the strict gate -> promotion by hot reload, rolled back when its live
check fails.

1. rows      every logged request whose feedback names a domain (`correct_domain`, joined by `tandem traffic
             export`) becomes a row: the last user message as logged (redacted at log time), tools present
             or not, label = the named domain. One row per distinct prompt (a prompt labelled two ways as
             often is dropped).
2. check     a row that repeats or near-duplicates (tandem.training.routing.dataset.drop_near_duplicates, the
             recipe's own guard: word-3-gram Jaccard >= 0.5 via MinHash LSH) a real test, real dev or
             hand-written prompt is dropped: it never trains and is never scored.
3. split     a share held out by a hash of the prompt text; a train row near-duplicating a held-out one is
             dropped, so the held-out figure is on prompts the candidate has not seen.
4. refit     the served router's recipe (its manifest entry's config, with this checkout's data files) plus
             the train rows (weight `feedback_weight`), embedded with the *served* encoder (packaged int8
             MiniLM + the served encoder LoRA, if any; never retrained here), and both heads fitted, the
             default-domain margin, temperatures and cascade threshold chosen as `tandem router train` does.
             Embeddings are cached by encoder hash, so a later turn embeds only new rows.
5. gate      both routers, as the service loads them (OnnxRouter), on the real dev set: refused when the
             candidate falls (paired, one-sided exact McNemar p_fall < alpha); and on the held-out rows:
             it must get more right than the served router (and, with `heldout_significance`, p_gain < alpha).
6. promote   the candidate's files under artifacts_dir/router-loop/<version>/ and the router's manifest
             entry replaced (`extra.replaces`: the previous version, `trained_on` + traffic_feedback); with
             promote.router_url, POST /admin/reload (the router rebuilds its domain router and swaps it),
             the reloaded version checked, the held-out prompts routed live through /v1/route; a failed
             reload, a failed request or a live accuracy below the floor restores the previous entry and
             reloads again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tandem.common.manifest import Manifest, ManifestError, write_json
from tandem.pipeline.loop.admin import reload, reload_and_check
from tandem.pipeline.loop.config import LoopConfig

log = logging.getLogger("tandem.pipeline.loop.router")
FEEDBACK_DATASET = "traffic_feedback"
# recipe fields holding data files: a manifest records the paths of the machine that trained the router;
# where such a file is gone (another checkout, the layout move), this checkout's default is used
_DATA_FIELDS = (("templates", "path"), ("handwritten",), ("real_prompts", "test"), ("real_prompts", "dev"),
                ("real_prompts", "train"))


class RouterStopped(Exception):
    """Nothing for the router to learn this turn (too few rows); not an error."""


# ---- 1-3: rows -------------------------------------------------------------------------------------

def _last_user(prompt: list[dict]) -> str:
    for message in reversed(prompt):
        if message.get("role") == "user":
            return message.get("content") or ""
    return (prompt[-1].get("content") or "") if prompt else ""


def feedback_rows(rows_path: Path, domains: list[str]) -> tuple[list[dict], dict]:
    """One row per distinct prompt whose feedback named a domain: {id, text, label, routed, tools, requests}."""
    from tandem.training.routing.dataset import text_key

    groups: dict[str, list[dict]] = {}
    seen = outside = 0
    with open(rows_path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            label = row.get("correct_domain")
            if not label:
                continue
            seen += 1
            text = _last_user(row.get("prompt") or [])
            if label not in domains or not text.strip():
                outside += 1
                continue
            groups.setdefault(text_key(text), []).append({**row, "_text": text})
    out, conflicting = [], 0
    for key, members in groups.items():
        votes = Counter(m["correct_domain"] for m in members).most_common()
        if len(votes) > 1 and votes[0][1] == votes[1][1]:
            conflicting += 1
            continue
        first = members[0]
        out.append({"id": hashlib.sha256(key.encode()).hexdigest()[:16], "text": first["_text"], "label": votes[0][0],
                    "routed": Counter(m["suite"].removeprefix("traffic/") for m in members).most_common(1)[0][0],
                    "tools": [{"name": str(t)} for t in first.get("tools") or []], "requests": len(members)})
    out.sort(key=lambda r: r["id"])
    return out, {"feedback_with_domain": seen, "outside_domains_or_empty": outside, "prompts": len(out),
                 "conflicting_labels": conflicting,
                 "corrected": sum(r["label"] != r["routed"] for r in out)}


def held_out_sets(config: LoopConfig, domains: list[str]):
    """The router's evaluation prompts, as examples: real test, real dev, hand-written."""
    from tandem.training.routing.dataset import load_handwritten, load_real_prompts

    r = config.router
    return {"real_test": load_real_prompts(r.test, "real_test"), "real_dev": load_real_prompts(r.dev, "real_dev"),
            "handwritten": [ex for ex in load_handwritten(r.handwritten) if ex.domain in domains]}


def _examples(rows: list[dict], split: str = "train"):
    from tandem.training.routing.examples import RoutingExample

    return [RoutingExample(dataset=FEEDBACK_DATASET, item_id=r["id"], text=r["text"], domain=r["label"],
                           tools=r["tools"], origin="real", split=split) for r in rows]


def check_rows(rows: list[dict], held: dict[str, list]) -> tuple[list[dict], dict]:
    """Rows that repeat or near-duplicate no evaluation prompt (the recipe's own guard)."""
    from tandem.training.routing.dataset import drop_near_duplicates

    kept_ids = {ex.item_id for ex in drop_near_duplicates(_examples(rows), [ex for s in held.values() for ex in s])[0]}
    kept = [r for r in rows if r["id"] in kept_ids]
    return kept, {"checked_against": {name: len(s) for name, s in held.items()},
                  "dropped": [r["id"] for r in rows if r["id"] not in kept_ids], "kept": len(kept)}


def split_rows(rows: list[dict], share: float) -> tuple[list[dict], list[dict], int]:
    """(train, held out, train rows dropped as near-duplicates of a held-out one), by a hash of the text."""
    from tandem.training.routing.dataset import drop_near_duplicates, text_key

    def held(row: dict) -> bool:
        digest = hashlib.sha256(f"loop-router-heldout:{text_key(row['text'])}".encode()).hexdigest()
        return int(digest[:8], 16) / 0xFFFFFFFF < share
    train, heldout = [r for r in rows if not held(r)], [r for r in rows if held(r)]
    if not heldout:
        return train, heldout, 0
    kept_ids = {ex.item_id for ex in drop_near_duplicates(_examples(train), _examples(heldout, "test"))[0]}
    return [r for r in train if r["id"] in kept_ids], heldout, len(train) - len(kept_ids)


# ---- 4: refit --------------------------------------------------------------------------------------

def served_recipe(entry_config: dict[str, Any], artifacts_dir: Path):
    """The served router's recipe from its manifest entry, runnable here: data files this checkout lacks
    fall back to its own, the encoder adapter is the served one (not the training-time path)."""
    from tandem.training.routing.config import RouterRecipeConfig

    if not entry_config:
        raise ManifestError("the served router's manifest entry records no recipe config: it cannot be refit")
    raw = json.loads(json.dumps(entry_config))
    for path in _DATA_FIELDS:
        node = raw
        for key in path[:-1]:
            node = node.get(key) or {}
        value = node.get(path[-1])
        if value is not None and not Path(value).is_file():
            node.pop(path[-1])
    raw.setdefault("encoder", {})["lora"] = None
    raw["artifacts_dir"] = str(artifacts_dir)
    return RouterRecipeConfig.model_validate(raw)


def _fit(recipe, encoder, examples, embeddings: np.ndarray, weight: np.ndarray):
    """Both heads, margin, temperatures and cascade threshold, as tandem.training.routing.train.run fits them."""
    from tandem.services.routing.features import request_features
    from tandem.training.routing import fit

    domains = recipe.domains
    ids = encoder.token_ids([ex.text for ex in examples])
    features = np.stack([request_features(ex.text, ex.tools) for ex in examples])
    y = np.array([domains.index(ex.domain) for ex in examples])
    origin = np.array([ex.origin for ex in examples])
    split = np.array([ex.split for ex in examples])
    real = origin == "real"
    train, dev = split == "train", split == "dev"
    emb_head, tok_head = fit.fit_heads(recipe, embeddings, features, ids, y, train, weight,
                                       encoder.tokenizer.get_vocab_size())
    margin_rows, temperature_rows, cascade_rows = fit.calibration_rows(recipe.calibrate_on, real, dev, origin)
    default = domains.index(recipe.default_domain)
    calibration = {}
    for name, head, logits in (("second-stage", emb_head, emb_head.logits(embeddings, features, ids)),
                                ("first-stage", tok_head, tok_head.logits(ids, features))):
        margin = fit.choose_default_margin(logits[margin_rows], y[margin_rows], default)
        head.bias[default] -= margin
        logits[:, default] -= margin
        head.temperature = fit.calibrate(logits[temperature_rows], y[temperature_rows])
        calibration[name] = {"default_margin": margin, "temperature": round(head.temperature, 4)}
        if name == "first-stage" and recipe.cascade.enabled:
            tok_head.threshold = fit.choose_threshold(logits[cascade_rows], y[cascade_rows], tok_head.temperature,
                                                      recipe.cascade.min_precision)
            calibration[name]["threshold"] = tok_head.threshold
    return emb_head, tok_head, calibration


def refit(config: LoopConfig, train_rows: list[dict], out: Path) -> dict[str, Any]:
    """The candidate router in `out` (a folder with its own manifest entry `config.router.entry`)."""
    from tandem.services.routing.encoder import OnnxEncoder
    from tandem.services.routing.heads import save_heads
    from tandem.services.routing.onnx_router import verified_files
    from tandem.services.routing.packaged_encoder import packaged_encoder_path
    from tandem.training.routing.dataset import routing_data, text_key
    from tandem.training.routing.embedding_cache import cached_embeddings

    started = time.monotonic()
    name = config.router.entry
    served = Manifest(config.artifacts_dir).entry(name)
    paths = verified_files(config.artifacts_dir, name)
    meta = json.loads(paths["router.json"].read_text())
    recipe = served_recipe(served.config, out)
    if sorted(recipe.domains) != sorted(meta["domains"]):
        raise ManifestError(f"the served router's recipe routes to {recipe.domains}, its router.json to {meta['domains']}")
    everything, dropped = routing_data(recipe)
    feedback_keys = {text_key(r["text"]) for r in train_rows}
    # the recipe's train rows, dev rows (margin, temperature, cascade) and nothing it only evaluates on; a
    # prompt somebody labelled replaces its weak label, as the hand-labelled train set's rows do
    examples = [ex for ex in everything if ex.split in ("train", "dev") and ex.origin != "handwritten"
                and ex.domain in recipe.domains and text_key(ex.text) not in feedback_keys]
    examples += _examples(train_rows)
    weight = np.ones(len(examples))
    for i, ex in enumerate(examples):
        if ex.dataset == FEEDBACK_DATASET:
            weight[i] = config.router.feedback_weight
        elif ex.dataset == "real_train":
            weight[i] = recipe.real_prompts.train_file_weight
        elif ex.dataset == "real_dev" and ex.split == "train":
            weight[i] = recipe.real_prompts.train_weight
    encoder_path = paths.get("encoder.onnx") or packaged_encoder_path(meta["encoder_sha256"])
    lora = paths.get("encoder_lora.npz") if meta.get("encoder_lora") else None
    encoder = OnnxEncoder(encoder_path, paths["tokenizer.json"], meta["max_tokens"], threads=min(os.cpu_count() or 1, 2),
                          truncation=meta.get("truncation", "head"), lora_path=lora)
    texts = [ex.text for ex in examples]
    ids = encoder.token_ids(texts)
    embeddings = cached_embeddings(Path(encoder_path), meta["max_tokens"], recipe.batch_size, texts,
                                   lambda todo: encoder.encode_ids([ids[i] for i in todo], recipe.batch_size),
                                   meta.get("truncation", "head"), Path(lora) if lora else None)
    embedded = time.monotonic()
    emb_head, tok_head, calibration = _fit(recipe, encoder, examples, embeddings, weight)
    out.mkdir(parents=True, exist_ok=True)
    files = [save_heads(out / "heads.npz", emb_head, tok_head)]
    for file_name, path in paths.items():
        if file_name != "heads.npz":
            shutil.copy2(path, out / file_name)
            files.append(out / file_name)
    counts = Counter(f"{ex.split}/{'feedback' if ex.dataset == FEEDBACK_DATASET else ex.origin}" for ex in examples)
    trained_on = {**(served.extra.get("trained_on") or {}), FEEDBACK_DATASET: ["train"]}
    Manifest(out).record(name, "router", files, config=served.config,
                         extra={"trained_on": trained_on, "refit_of": served.files and _entry_version(served)})
    return {"rows": dict(sorted(counts.items())), "near_duplicates_dropped_by_recipe": dropped,
            "calibration": calibration, "embed_s": round(embedded - started, 1),
            "fit_s": round(time.monotonic() - embedded, 1), "trained_on": trained_on}


def _entry_version(entry) -> str:
    from tandem.services.routing.onnx_router import files_version

    return files_version((Path(rec.path).name, rec.sha256) for rec in entry.files)


# ---- 5: gate ---------------------------------------------------------------------------------------

def _route_all(router, items: list[tuple[str, list]]) -> list[str]:
    from tandem.common.wire import ChatCompletionRequest

    return [router.route(ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": text}],
                                               tools=_tools(tools))).domain for text, tools in items]


def _tools(names: list[dict]) -> list[dict] | None:
    """The logged tools (names only) as OpenAI function tools: the router reads only their presence."""
    return [{"type": "function", "function": {"name": t["name"], "parameters": {"type": "object", "properties": {}}}}
            for t in names] or None


def gate(config: LoopConfig, candidate_dir: Path, heldout: list[dict], dev: list) -> dict[str, Any]:
    from tandem.services.routing.onnx_router import OnnxRouter
    from tandem.training.modifiers.gate import mcnemar

    r = config.router
    served = OnnxRouter(config.artifacts_dir, entry=r.entry)
    candidate = OnnxRouter(candidate_dir, entry=r.entry)
    figures: dict[str, Any] = {"served_version": served.version, "candidate_version": candidate.version}
    for name, items, labels in (("dev", [(ex.text, []) for ex in dev], [ex.domain for ex in dev]),
                                ("heldout", [(x["text"], x["tools"]) for x in heldout], [x["label"] for x in heldout])):
        predicted = {who: _route_all(router, items) for who, router in (("served", served), ("candidate", candidate))}
        right = {who: [float(p == t) for p, t in zip(pred, labels, strict=True)] for who, pred in predicted.items()}
        figures[name] = {"n": len(labels), "served_accuracy": sum(right["served"]) / len(labels),
                         "candidate_accuracy": sum(right["candidate"]) / len(labels),
                         **mcnemar(right["served"], right["candidate"])}
        if name == "heldout":
            figures[name]["items"] = [{"id": x["id"], "label": x["label"], "served": s, "candidate": c}
                                      for x, s, c in zip(heldout, predicted["served"], predicted["candidate"], strict=True)]
    d, h = figures["dev"], figures["heldout"]
    if d["p_fall"] < r.alpha:
        reason = (f"falls on the real dev set: {d['served_accuracy']:.4f} -> {d['candidate_accuracy']:.4f} "
                  f"({d['losses']} lost, {d['wins']} won, one-sided McNemar p_fall {d['p_fall']:.3g} < {r.alpha})")
    elif h["candidate_accuracy"] <= h["served_accuracy"]:
        reason = (f"no gain on the held-out feedback: {h['served_accuracy']:.4f} -> {h['candidate_accuracy']:.4f}")
    elif r.heldout_significance and h["p_gain"] >= r.alpha:
        reason = (f"held-out gain not significant: {h['wins']} won, {h['losses']} lost, p_gain {h['p_gain']:.3g} "
                  f">= {r.alpha}")
    else:
        reason = None
    verdict = reason is None
    figures.update(servable=verdict, reason=reason or (
        f"held-out feedback {h['served_accuracy']:.4f} -> {h['candidate_accuracy']:.4f} (p_gain {h['p_gain']:.3g}); "
        f"real dev {d['served_accuracy']:.4f} -> {d['candidate_accuracy']:.4f} (p_fall {d['p_fall']:.3g})"))
    log.info("router gate: %s (%s)", "PASS" if verdict else "FAIL", figures["reason"])
    return figures


# ---- 6: promote ------------------------------------------------------------------------------------

def live_check(config: LoopConfig, verdict: dict, heldout: list[dict]) -> dict[str, Any]:
    """The held-out prompts routed through the running router's /v1/route."""
    r, p = config.router, config.promote
    rows = heldout[: r.check_items] if r.check_items else heldout
    failed, right = [], 0
    with httpx.Client(timeout=p.timeout_s, headers={"authorization": "Bearer tandem"}) as client:
        for row in rows:
            body = {"model": "auto", "messages": [{"role": "user", "content": row["text"]}]}
            if row["tools"]:
                body["tools"] = _tools(row["tools"])
            try:
                response = client.post(f"{p.router_url.rstrip('/')}/v1/route", json=body)
            except httpx.HTTPError as exc:
                failed.append(repr(exc))
                continue
            if response.status_code != 200:
                failed.append(f"{response.status_code} {response.text[:200]}")
                continue
            right += response.json()["domain"] == row["label"]
    accuracy = right / len(rows)
    gate_accuracy = sum(i["candidate"] == i["label"] for i in verdict["heldout"]["items"][: len(rows)]) / len(rows)
    floor = r.min_live_accuracy if r.min_live_accuracy is not None else gate_accuracy - r.tolerance
    why = (f"{len(failed)} live requests failed ({failed[:3]})" if failed else
           f"live held-out accuracy {accuracy:.3f} < {floor:.3f}" if accuracy < floor else None)
    return {"passed": why is None, "why": why, "accuracy": accuracy, "gate_accuracy": gate_accuracy, "floor": floor,
            "items": len(rows)}


def promote(config: LoopConfig, candidate_dir: Path, verdict: dict, heldout: list[dict], run_info: dict) -> dict:
    artifacts, name, p = config.artifacts_dir, config.router.entry, config.promote
    manifest = Manifest(artifacts)
    previous = manifest.entry(name)
    staged = Manifest(candidate_dir).entry(name)
    version = _entry_version(staged)
    target = artifacts / "router-loop" / version
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for rec in staged.files:
        src = candidate_dir / rec.path
        dst = target / Path(rec.path).name
        if not dst.is_file():
            shutil.copy2(src, dst)
        files.append(dst)
    previous_version = _entry_version(previous)
    manifest.record(name, "router", files, config=previous.config,
                    metrics={"loop_gate": {k: verdict[k] for k in ("reason", "dev", "heldout")}
                             | {"heldout": {k: v for k, v in verdict["heldout"].items() if k != "items"}}},
                    extra={"trained_on": staged.extra["trained_on"], "replaces": previous_version, "loop": run_info})
    result: dict[str, Any] = {"promoted": True, "folder": str(target.relative_to(artifacts)), "version": version,
                              "previous_version": previous_version}
    if p.router_url is None:
        result["reloaded"] = False
        return result

    def serves_version(reloaded: dict[str, Any]) -> str | None:
        served = result["served_version"] = (reloaded.get("router") or {}).get("version")
        return None if served == version else \
            f"the reloaded router serves version {served}, not {version}: {reloaded.get('router')}"

    failure = reload_and_check(p.router_url, p.timeout_s, result, serves_version,
                               lambda: live_check(config, verdict, heldout),
                               (httpx.HTTPError, RuntimeError, KeyError, ValueError))
    if failure is None:
        return result
    log.error("router promotion failed its check (%s): rolling back", failure)
    manifest.put(name, previous)
    back = reload(p.router_url, p.timeout_s)
    restored = (back.get("router") or {}).get("version")
    return {**result, "promoted": False, "rolled_back": True, "why": failure,
            "restored": restored == previous_version, "version_after_rollback": restored}


# ---- the router part of a turn ----------------------------------------------------------------------

def run_router(config: LoopConfig, work: Path, raw_rows: Path) -> dict[str, Any]:
    """The router part of one turn; its report (status: promoted, not_promoted, rolled_back, stopped)."""
    from tandem.services.routing.base import RouterLoadError
    from tandem.services.routing.onnx_router import verified_files

    r = config.router
    out = work / "router"
    report: dict[str, Any] = {"entry": r.entry}
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        try:
            domains = json.loads(verified_files(config.artifacts_dir, r.entry)["router.json"].read_text())["domains"]
        except RouterLoadError as exc:  # e.g. a stack on the keyword router: nothing to refit
            raise RouterStopped(f"no trained router to refit: {exc}") from exc
        rows, report["feedback"] = feedback_rows(raw_rows, domains)
        held = held_out_sets(config, domains)
        rows, report["check"] = check_rows(rows, held)
        train_rows, heldout, near = split_rows(rows, r.heldout_share)
        report["rows"] = {"train": len(train_rows), "heldout": len(heldout), "train_dropped_near_heldout": near}
        write_json(out / "rows.json", {"train": train_rows, "heldout": heldout})
        timings["rows"] = round(time.monotonic() - started, 1)
        if len(rows) < r.min_rows:
            raise RouterStopped(f"{len(rows)} prompts with a corrected domain (router.min_rows {r.min_rows})")
        if len(heldout) < r.min_heldout or not train_rows:
            raise RouterStopped(f"{len(train_rows)} train and {len(heldout)} held-out prompts "
                                f"(router.min_heldout {r.min_heldout})")
        step = time.monotonic()
        report["refit"] = refit(config, train_rows, out / "candidate")
        timings["refit"] = round(time.monotonic() - step, 1)
        step = time.monotonic()
        verdict = gate(config, out / "candidate", heldout, held["real_dev"])
        report["gate"] = verdict
        timings["gate"] = round(time.monotonic() - step, 1)
        if verdict["servable"] and config.promote.enabled:
            step = time.monotonic()
            report["promotion"] = promote(config, out / "candidate", verdict, heldout,
                                          {"name": config.name, "work_dir": str(work), "at": time.time(),
                                           "feedback_prompts": len(rows)})
            timings["promote"] = round(time.monotonic() - step, 1)
        else:
            report["promotion"] = {"promoted": False, "why": "the candidate router did not pass the gate"
                                   if config.promote.enabled else "promote.enabled is false"}
        report["status"] = "promoted" if report["promotion"]["promoted"] else \
            "rolled_back" if report["promotion"].get("rolled_back") else "not_promoted"
    except RouterStopped as exc:
        report["status"], report["why"] = "stopped", str(exc)
        log.warning("loop %s, router: stopped: %s", config.name, exc)
    report["timings_s"] = timings
    return report
