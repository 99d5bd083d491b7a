"""The compression recipe end to end on a tiny random Llama: every stage, outputs, report, resume."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from tandem.common.manifest import Manifest, sha256_file
from tandem.common.recipe_config import ConfigError, load_config
from tandem.compression.config import CompressConfig
from tandem.compression.report import REQUIRED_FIGURES

STAGES = ["source", "prune", "recover", "awq", "gguf_f16", "quantize", "zstd", "calibrate"]


def _config(tiny_llama_dir, artifacts, *extra):
    overrides = [f"source.model={tiny_llama_dir}", f"artifacts_dir={artifacts}", "run_name=tiny",
                 "threads=1", "data.calibration_samples=4", "data.seq_len=32", "data.heldout_tokens=128",
                 "recovery.steps=2", "recovery.batch_size=2", "awq.n_grid=3", "gguf.imatrix=skip",
                 "zstd.level=3", "eval.arc_items=6", "eval.calibration_dev_items=6", *extra]
    return load_config(CompressConfig, "configs/compression/smollm2_135m.yaml", overrides)


@pytest.fixture(scope="module")
def compressed(tiny_llama_dir, tmp_path_factory):
    from tandem.compression.recipe import CompressionRecipe

    artifacts = tmp_path_factory.mktemp("artifacts")
    recipe = CompressionRecipe(_config(tiny_llama_dir, artifacts))
    recipe.setup()
    recipe.run()
    return recipe, recipe.save(), artifacts


def test_every_stage_is_reported_with_every_figure(compressed):
    _, paths, _ = compressed
    report = json.loads(paths["json"].read_text())
    assert [s["name"] for s in report["stages"]] == STAGES
    for stage in report["stages"]:
        for figure in REQUIRED_FIGURES:
            assert math.isfinite(stage[figure]), (stage["name"], figure)
        assert stage["size_bytes"] > 0 and stage["perplexity"] > 1
    by_name = {s["name"]: s for s in report["stages"]}
    assert by_name["quantize"]["bits_per_weight"] < by_name["gguf_f16"]["bits_per_weight"]
    assert by_name["zstd"]["size_bytes"] < by_name["quantize"]["size_bytes"]
    assert {"sizing", "plan_gap", "cost_estimate"} <= report.keys()
    assert "| quantize | llama.cpp |" in paths["markdown"].read_text()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pruning_sparsity_survives_recovery(compressed):
    recipe, _, _ = compressed
    by_name = {r.name: r for r in recipe.results}
    assert by_name["prune"].sparsity_linear == pytest.approx(0.5, abs=0.01)
    assert by_name["recover"].sparsity_linear >= by_name["prune"].sparsity_linear
    assert by_name["recover"].extra["sparsity_after_merge"] >= by_name["recover"].extra["sparsity_before_merge"]


def test_hf_outputs_and_packed_awq_checkpoint_load(compressed):
    from transformers import AutoModelForCausalLM

    from tandem.compression.awq import load_packed

    recipe, _, _ = compressed
    by_name = {r.name: r for r in recipe.results}
    for name in ("prune", "recover", "awq"):
        assert AutoModelForCausalLM.from_pretrained(by_name[name].path).num_parameters() > 0
    packed = by_name["awq"].extra["packed"]
    assert "quantization_config" in json.loads(open(f"{packed['path']}/config.json").read())
    assert load_packed(packed["path"]).num_parameters() > 0
    assert packed["size_bytes"] < by_name["awq"].size_bytes


def test_published_base_is_servable_and_matches_manifest(compressed):
    from tandem.common.zstd_pack import unpack_cached
    from tandem.compression.scoring import load_gguf

    recipe, paths, artifacts = compressed
    manifest = Manifest(artifacts)
    entry = manifest.entry("base")
    assert entry.kind == "base"
    unpacked = unpack_cached(manifest.verified_path("base"), cache_dir=artifacts / "cache")
    assert sha256_file(unpacked) == entry.base_sha256
    assert sha256_file(unpacked) == sha256_file(next(r for r in recipe.results if r.name == "quantize").path)
    from transformers import AutoTokenizer

    text = "The mitochondria is the powerhouse of the cell, 1234."
    expected = AutoTokenizer.from_pretrained(recipe.source_dir)(text, add_special_tokens=False)["input_ids"]
    llm = load_gguf(unpacked, n_ctx=64)
    assert llm.tokenize(text.encode(), add_bos=False) == expected
    llm.close()
    assert entry.extra["answer_confidence"]["temperature"] > 0
    assert manifest.entry("compression-report-tiny").kind == "report"


def test_rerun_reuses_unchanged_stages(compressed, tiny_llama_dir):
    from tandem.compression.recipe import CompressionRecipe

    recipe, _, artifacts = compressed
    stage_files = sorted(recipe.work.glob("*/stage.json"))
    before = {p.parent.name: p.stat().st_mtime_ns for p in stage_files}
    again = CompressionRecipe(_config(tiny_llama_dir, artifacts, "zstd.level=5"))
    again.setup()
    again.run()
    after = {p.parent.name: p.stat().st_mtime_ns for p in sorted(again.work.glob("*/stage.json"))}
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == ["06-zstd", "07-calibrate"]


def test_corrupt_gguf_is_refused(compressed, tmp_path):
    from tandem.compression.gguf_export import GGUFFileError, check_gguf

    recipe, _, _ = compressed
    quantized = next(r for r in recipe.results if r.name == "quantize").path
    truncated = tmp_path / "truncated.gguf"
    data = open(quantized, "rb").read()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(GGUFFileError, match="truncated|corrupt"):
        check_gguf(truncated)
    not_gguf = tmp_path / "zeros.gguf"
    shutil.copyfile(quantized, not_gguf)
    with open(not_gguf, "r+b") as fh:
        fh.write(b"\0\0\0\0")
    with pytest.raises(GGUFFileError, match="not a GGUF"):
        check_gguf(not_gguf)


def test_invalid_configs_are_refused_before_work():
    with pytest.raises(ConfigError, match="2:4"):
        load_config(CompressConfig, None, ["prune.sparsity=0.7"])
    with pytest.raises(ConfigError, match="quant_type"):
        load_config(CompressConfig, None, ["gguf.quant_type=Q9_X"])
    with pytest.raises(ConfigError, match="must differ"):
        load_config(CompressConfig, None, ["data.heldout=builtin:sciq"])
    with pytest.raises(ConfigError, match="recovery"):
        load_config(CompressConfig, None, ["prune.enabled=false"])
