"""A fine-tuned router encoder ships as LoRA deltas merged into the packaged int8 graph at load
(tandem.services.routing.lora_merge): the protobuf reader agrees with `onnx`, a merge adds the delta it is
given (within int8 rounding), the HF-named adapter maps onto the graph's weights one to one, and the
served router refuses an artifact that names an adapter it does not carry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tandem.services.routing.lora_merge import (
    LoraMergeError,
    base_weights,
    initializers,
    merged_model_bytes,
    read_tensor,
)
from tandem.services.routing.packaged_encoder import packaged_encoder_path

LAYERS = 6
MODULES = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return packaged_encoder_path().read_bytes()


def test_reader_matches_onnx(model_bytes):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    table = initializers(model_bytes)
    for init in model.graph.initializer:
        assert np.array_equal(read_tensor(model_bytes, table[init.name]), numpy_helper.to_array(init)), init.name


def test_merge_adds_the_delta(tmp_path, model_bytes):
    base = base_weights(model_bytes)
    names = [n for n in sorted(base) if n.startswith("val_")][:3]
    rng = np.random.default_rng(0)
    adapter = {}
    for name in names:
        rows, cols = base[name].shape
        adapter[f"{name}.down"] = rng.normal(0, 0.05, (rows, 4)).astype(np.float16)
        adapter[f"{name}.up"] = rng.normal(0, 0.05, (4, cols)).astype(np.float16)
    path = tmp_path / "lora.npz"
    np.savez(path, **adapter)
    merged = base_weights(merged_model_bytes(packaged_encoder_path(), path))
    for name in base:
        if name not in names:
            assert np.array_equal(merged[name], base[name]), name
            continue
        delta = adapter[f"{name}.down"].astype(np.float32) @ adapter[f"{name}.up"].astype(np.float32)
        step = np.abs(base[name] + delta).max(axis=0, keepdims=True) / 127  # one int8 step per column
        assert np.all(np.abs(merged[name] - (base[name] + delta)) <= step * 0.5 + 1e-6), name
        assert np.abs(merged[name] - base[name]).max() > 0.01  # it did change


def test_merge_refuses_unknown_weight(tmp_path):
    path = tmp_path / "lora.npz"
    np.savez(path, **{"nope.down": np.zeros((384, 2), np.float16), "nope.up": np.zeros((2, 384), np.float16)})
    with pytest.raises(LoraMergeError):
        merged_model_bytes(packaged_encoder_path(), path)


def test_zero_adapter_keeps_the_embeddings(tmp_path, model_bytes):
    from tandem.services.routing.encoder import OnnxEncoder
    from tandem.training.minilm import minilm_dir

    base = base_weights(model_bytes)
    path = tmp_path / "lora.npz"
    np.savez(path, **{k: np.zeros((v.shape[0], 2) if s == "down" else (2, v.shape[1]), np.float16)
                      for n, v in base.items() if n.startswith("val_") for s, k in
                      (("down", f"{n}.down"), ("up", f"{n}.up"))})
    tokenizer = minilm_dir() / "tokenizer.json"
    plain = OnnxEncoder(packaged_encoder_path(), tokenizer, 32)
    merged = OnnxEncoder(packaged_encoder_path(), tokenizer, 32, lora_path=path)
    texts = ["Write a Python function that reverses a string.", "hi", "how many legs do 3 spiders have?"]
    cos = np.sum(plain.encode(texts, 1) * merged.encode(texts, 1), axis=1)
    assert cos.min() >= 0.999  # re-quantizing an unchanged column reproduces it up to rounding


def test_hf_adapter_maps_onto_every_graph_weight(tmp_path):
    pytest.importorskip("safetensors")
    from tandem.training.routing.finetune import onnx_adapter

    rng = np.random.default_rng(1)
    sizes = {"intermediate.dense": (1536, 384), "output.dense": (384, 1536)}
    adapter = {}
    for layer in range(LAYERS):
        for module in MODULES:
            out, inp = sizes.get(module, (384, 384))
            key = f"encoder.layer.{layer}.{module}"
            adapter[f"{key}.A"] = rng.normal(0, 0.01, (4, inp)).astype(np.float32)
            adapter[f"{key}.B"] = rng.normal(0, 0.01, (out, 4)).astype(np.float32)
    np.savez(tmp_path / "hf.npz", **adapter)
    out = onnx_adapter(tmp_path / "hf.npz", packaged_encoder_path(), tmp_path / "onnx.npz")
    with np.load(out) as data:
        names = {k.rsplit(".", 1)[0] for k in data.files}
        assert len(names) == LAYERS * len(MODULES)  # one graph weight per module, none shared
        for name in names:
            assert data[f"{name}.down"].shape[1] == data[f"{name}.up"].shape[0] == 4


def test_router_refuses_missing_adapter(tmp_path, trained_router):
    import shutil

    from tandem.common.manifest import Manifest
    from tandem.services.routing.base import RouterLoadError
    from tandem.services.routing.onnx_router import OnnxRouter

    src = trained_router.config.output_dir
    dst = tmp_path / "router"
    shutil.copytree(src, dst)
    meta = json.loads((dst / "router.json").read_text())
    (dst / "router.json").write_text(json.dumps({**meta, "encoder_lora": True}))
    files = [dst / name for name in ("encoder.onnx", "tokenizer.json", "heads.npz", "router.json")]
    Manifest(tmp_path).record(name="router", kind="router", files=files, config={}, metrics={})
    with pytest.raises(RouterLoadError, match="encoder_lora"):
        OnnxRouter(tmp_path, meta["domains"])


def test_score_reads_the_adapter_and_its_own_classifier(tmp_path):
    """`finetune score` (the input length probe) applies the adapter's delta and the head saved beside
    it: a head that always says `general` scores the share of general rows, all in one column."""
    pytest.importorskip("torch")
    from tandem.training.routing.finetune import score

    key = "encoder.layer.0.attention.self.query"
    np.savez(tmp_path / "lora.npz", **{f"{key}.A": np.zeros((4, 384), np.float32),
                                       f"{key}.B": np.zeros((384, 4), np.float32)})
    domains = ["code", "reasoning", "automation", "general"]
    np.savez(tmp_path / "lora.head.npz", weight=np.zeros((4, 384), np.float32),
             bias=np.array([0, 0, 0, 5], np.float32), domains=np.array(domains))
    result = score(tmp_path / "lora.npz", ["dev"], 32, "head_tail")["dev"]
    labels = [json.loads(line)["label"] for line in
              (Path(__file__).parents[2] / "tandem/training/routing/data/real_prompts_dev.jsonl").open()]
    assert result["n"] == len(labels) and set(result["predictions"].values()) == {"general"}
    assert result["accuracy"] == pytest.approx(labels.count("general") / len(labels))
    assert [row[:3] for row in result["confusion"]] == [[0, 0, 0]] * 4


def _tiny_dump(path: Path) -> list[dict]:
    """A dump as `finetune dump` writes it, 48 rows, with the packaged MiniLM (linked, not copied)."""
    import gzip

    from tandem.training.minilm import minilm_dir

    domains = ["code", "reasoning", "automation", "general"]
    rows = [{"text": f"{kind} request number {i}: " + " ".join([kind] * (i % 5 + 1)), "label": domains[i % 4],
             "split": "train", "origin": "real" if kind.startswith("real") else "public", "dataset": kind}
            for kind in ("public", "real_train", "real_dev") for i in range(16)]
    path.mkdir()
    with gzip.open(path / "rows.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    (path / "domains.json").write_text(json.dumps(domains))
    (path / "minilm").symlink_to(minilm_dir())
    return rows


def test_cross_validation_holds_out_each_fold_once(tmp_path):
    """`train --folds`: a fold's real training rows are left out of training and scored with the real
    dev rows; over the folds every real training row is held out exactly once, and no other row is."""
    pytest.importorskip("torch")
    from tandem.training.routing.finetune import fold_of, train

    rows = _tiny_dump(tmp_path / "dump")
    real = [row for row in rows if row["dataset"] == "real_train"]
    held = []
    for fold in range(3):
        info = train(tmp_path / "dump", tmp_path / f"f{fold}.npz", 32, "head_tail", r=2, lr=1e-3, epochs=1,
                     w_real=3.0, seed=0, folds=3, fold=fold)
        in_fold = [row for row in real if fold_of(row["text"], 3) == fold]
        assert info["held_out_rows"] == len(in_fold) and info["rows"] == 16 + 16 - len(in_fold)
        sets = [p["set"] for p in info["predictions"].values()]
        assert sets.count("real_dev") == 16 and sets.count("real_train") == len(in_fold)
        held += [k for k, p in info["predictions"].items() if p["set"] == "real_train"]
    assert len(held) == len(set(held)) == 16


def test_compare_pools_folds_and_pairs_rows(tmp_path):
    from tandem.training.routing.finetune import compare_folds

    def run(name, tokens, fold, right):
        predictions = {f"{fold}-{i}": {"set": "real_train", "label": "code", "predicted": "code" if ok else "general"}
                       for i, ok in enumerate(right)}
        predictions["dev"] = {"set": "real_dev", "label": "code", "predicted": "code"}
        path = tmp_path / f"{name}{fold}.json"
        path.write_text(json.dumps({"max_tokens": tokens, "folds": 2, "fold": fold, "predictions": predictions}))
        return path

    short = [run("a", 32, 0, [1, 0, 0, 1]), run("a", 32, 1, [0, 0, 1, 1])]
    long = [run("b", 256, 0, [1, 1, 1, 1]), run("b", 256, 1, [0, 1, 1, 0])]
    result = compare_folds(short, long)
    assert result["rows"] == 8
    assert (result["paired"]["wins"], result["paired"]["losses"]) == (3, 1)
    assert result["baseline"]["out_of_fold"] == 0.5 and result["candidate"]["out_of_fold"] == 0.75
    assert (result["baseline"]["max_tokens"], result["candidate"]["max_tokens"]) == (32, 256)
    assert result["baseline"]["encoder"] == "minilm"
    assert result["candidate"]["dev_per_fold"] == [1.0, 1.0]
    with pytest.raises(SystemExit, match="one run per fold"):
        compare_folds(short[:1], long[:1])
