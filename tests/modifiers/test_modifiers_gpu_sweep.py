"""The GPU sweep's selection, run on CPU with a tiny base: one run per learning rate in parallel
processes, the run of lowest dev loss kept as `<out>/<domain>/sft` with an f16 adapter, in the
layout `tandem build --from-sft` reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

from tandem.common.manifest import Manifest, sha256_file

ROOT = Path(__file__).resolve().parents[2]


def test_sweep_keeps_the_run_of_lowest_dev_loss_as_an_f16_adapter(tiny_base_gguf, tmp_path):
    rows, out = tmp_path / "rows", tmp_path / "out"
    tiny = [f"base_model={tiny_base_gguf}", "data.train_limit_per_source=8", "data.dev_limit_per_source=4",
            "sft.max_steps=3", "sft.batch_size=2", "sft.lora.r=4", "sft.max_seq_len=256"]
    common = [sys.executable, "-m", "tandem.training.modifiers.gpu_sweep", "--domains", "code", *tiny]
    subprocess.run([*common, "--write-rows", str(rows)], cwd=ROOT, check=True, timeout=600, capture_output=True)
    assert (rows / "code" / "train.jsonl").read_text().count("\n") >= 8  # mbpp + mbpp_bash, 8 each
    done = subprocess.run([*common, "--rows", str(rows), "--out", str(out), "--lrs", "1e-5,5e-3", "--jobs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads((out / "code" / "sweep.json").read_text())
    losses = {run["learning_rate"]: run["best_eval_loss"] for run in summary["runs"]}
    assert set(losses) == {1e-5, 5e-3}
    assert summary["chosen"]["learning_rate"] == min(losses, key=losses.get)
    sft = out / "code" / "sft"
    with safe_open(sft / "adapter" / "adapter_model.safetensors", "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    entry = Manifest(sft).entry("adapter")
    assert entry.base_sha256 == sha256_file(tiny_base_gguf)
    assert entry.config["learning_rate"] == summary["chosen"]["learning_rate"]
    assert not (out / "code" / "runs").exists()  # only the chosen run is kept
