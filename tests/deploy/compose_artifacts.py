"""A small artifacts folder for the compose test when no built one is given: the domain router
trained on a slice of the real data (its held-out split shipped as the canary's probes) and one
`code` modifier (a LoRA trained for 2 steps on the embedded base), both in one manifest.

The stack serves them exactly as it would serve `make artifacts`: the point is the wiring
(trained router, modifier worker, canary), not the quality of these tiny models. The folder is
kept under build/ and reused by later runs (`make clean` removes it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tandem.common.manifest import Manifest, sha256_file
from tandem.common.model_files import embedded_model_path
from tandem.common.recipe_config import load_config
from tandem.training.routing.config import RouterRecipeConfig

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "routing" / "router.yaml"


def build_router(root: Path, per_source: int = 30) -> None:
    from tandem.training.routing.train import run

    full = load_config(RouterRecipeConfig, RECIPE)
    overrides = [f"sources.{name}.limit={per_source}" for name in full.sources]
    overrides += ["templates.per_template=1", f"artifacts_dir={root}"]
    run(load_config(RouterRecipeConfig, RECIPE, overrides), measure_latency=False)


def build_code_modifier(root: Path, work: Path) -> None:
    from tandem.compression.gguf_to_hf import dequantize_gguf_to_hf
    from tandem.training.lora_export import export_lora_gguf
    from tandem.training.sft import run_sft
    from tandem.training.sft_config import LoraSettings, SFTConfig

    rows = [{"messages": [{"role": "user", "content": f"Write a Python function number {i}."},
                          {"role": "assistant", "content": f"def f{i}():\n    return {i}"}]} for i in range(16)]
    base = embedded_model_path()
    hf_dir = dequantize_gguf_to_hf(base, work / "hf-base")
    config = SFTConfig(base_model=str(hf_dir), output_dir=work / "train-code",
                       lora=LoraSettings(r=8, alpha=16, dropout=0.0, target_modules="all-linear"),
                       learning_rate=1e-3, max_steps=2, batch_size=2, max_seq_len=64, eval_steps=2,
                       lr_scheduler="constant", warmup_ratio=0.0, precision="fp32")
    result = run_sft(config, rows, rows[:2])
    lora = export_lora_gguf(result.adapter_dir, hf_dir, root / "modifiers" / "code.gguf")
    Manifest(root).record("code", "modifier", [lora], base_sha256=sha256_file(base), metrics={"steps": 2})


def build_small_artifacts(root: Path, work: Path) -> Path:
    """Build into a sibling folder, then rename: a half-built folder is never taken for a cached one."""
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    build_router(partial)
    build_code_modifier(partial, work)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root
