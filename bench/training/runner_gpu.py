"""Run the base recipe's native runner on the GPU (bf16, packing, Liger, per-layer compile) and copy
its metrics and loss curve to OUT. Used in the device runs to show the runner's CUDA path:

    python bench/training/runner_gpu.py OUT_DIR key=value ...
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tandem.common.recipe_config import load_config  # noqa: E402
from tandem.training.base_recipe import run_base_recipe  # noqa: E402
from tandem.training.base_recipe_config import BaseRecipeConfig  # noqa: E402


def main(out: Path, overrides: list[str]) -> None:
    recipe = load_config(BaseRecipeConfig, Path("configs/training/base_qlora.yaml"), overrides)
    result = run_base_recipe(recipe)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.json", "loss_curve.png"):
        shutil.copy(result.output_dir / name, out / f"runner_{name}")
    print(json.dumps({k: result.metrics[k] for k in ("train_loss", "eval_loss", "global_step", "tokens_per_s",
                                                        "precision", "train_runtime_s")}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
