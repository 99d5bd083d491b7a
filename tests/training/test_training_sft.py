"""The native LoRA SFT runner end to end on a tiny Llama (CPU): outputs, resume, early stopping,
and packed rows giving the same loss as padded batches (so no example attends to another)."""

from __future__ import annotations

import json

import pytest
from training_samples import chat_rows

from tandem.common.manifest import Manifest, sha256_file
from tandem.training.sft import run_sft
from tandem.training.sft_config import SFTConfig


def _config(base, out, **overrides) -> SFTConfig:
    values = {"base_model": str(base), "output_dir": out, "max_steps": 8, "eval_steps": 4, "batch_size": 4,
                  "max_seq_len": 128, "learning_rate": 5e-3, "warmup_ratio": 0.0, "logging_steps": 1,
                  "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}
    return SFTConfig(**(values | overrides))


@pytest.fixture(scope="module")
def trained(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    return run_sft(_config(tiny_llama_dir, out), chat_rows(40), chat_rows(8, offset=100))


def test_run_writes_adapter_config_metrics_plot_and_manifest(trained):
    out = trained.output_dir
    for name in ("config.json", "metrics.json", "log_history.json", "loss_curve.png"):
        assert (out / name).is_file(), name
    assert (trained.adapter_dir / "adapter_config.json").is_file()
    assert json.loads((out / "config.json").read_text())["lora"]["r"] == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 8 and metrics["train_rows"] == 40 and metrics["eval_rows"] == 8
    assert metrics["input_tokens_seen"] > 0 and metrics["tokens_per_s"] > 0
    evals = [e["eval_loss"] for e in json.loads((out / "log_history.json").read_text()) if "eval_loss" in e]
    assert len(evals) >= 2 and evals[-1] < evals[0]  # it learns
    entry = Manifest(out).entry("adapter")
    weights = next(f for f in entry.files if f.path.endswith("adapter_model.safetensors"))
    assert weights.sha256 == sha256_file(out / weights.path)
    assert entry.metrics["eval_loss"] == pytest.approx(metrics["eval_loss"])


def test_resume_continues_from_the_last_checkpoint(trained, tiny_llama_dir):
    result = run_sft(_config(tiny_llama_dir, trained.output_dir, max_steps=12, resume=True),
                     chat_rows(40), chat_rows(8, offset=100))
    assert result.metrics["resumed_from"].endswith("checkpoint-8")
    assert result.metrics["global_step"] == 12
    history = json.loads((trained.output_dir / "log_history.json").read_text())
    assert next(e["step"] for e in history if "loss" in e) == 1  # the history spans both runs


def test_early_stopping_stops_when_eval_loss_stops_improving(tiny_llama_dir, tmp_path):
    # A learning rate far too high makes eval loss rise after the first evaluation.
    result = run_sft(_config(tiny_llama_dir, tmp_path, max_steps=40, eval_steps=2, learning_rate=3.0,
                             early_stopping_patience=1, lr_scheduler="constant"),
                     chat_rows(40), chat_rows(8, offset=100))
    assert result.metrics["early_stopped"] is True
    assert result.metrics["global_step"] < 40
    assert result.metrics["eval_loss"] == pytest.approx(result.metrics["best_eval_loss"])


def test_packing_gives_the_same_first_step_loss_as_padding(tiny_llama_dir, tmp_path):
    def first_loss(packing: bool) -> float:
        # batch_size 8 puts all 8 rows (or all their packed rows) into the first step
        result = run_sft(_config(tiny_llama_dir, tmp_path / str(packing), max_steps=1, packing=packing,
                                 batch_size=8, shuffle=False), chat_rows(8), [])
        history = json.loads((result.output_dir / "log_history.json").read_text())
        return next(e["loss"] for e in history if "loss" in e)

    assert first_loss(True) == pytest.approx(first_loss(False), rel=1e-4)


def test_time_limit_stops_training_and_still_saves_an_evaluated_adapter(tiny_llama_dir, tmp_path):
    result = run_sft(_config(tiny_llama_dir, tmp_path, max_steps=40, eval_steps=20, max_time_s=0.001),
                     chat_rows(40), chat_rows(8, offset=100))
    assert result.metrics["stopped_by_time"] is True and result.metrics["early_stopped"] is False
    assert result.metrics["global_step"] == 1  # the limit is checked after each step
    assert result.metrics["eval_loss"] is not None
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
