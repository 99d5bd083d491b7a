"""The base fine-tuning recipe (plan phase 1A), run by `tandem train base`.

setup:  validate the recipe, write the Axolotl QLoRA YAML and check it with Axolotl's own schema
        (where an axolotl virtualenv exists; skipped with the reason otherwise), read the chat
        JSONL and hold out the validation split;
run:    the native runner (tandem.training.sft) with the same hyperparameters;
save:   the adapter as a GGUF LoRA for llama.cpp, and every file in the output folder's manifest.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest, write_json
from tandem.common.provenance import data_trained_on
from tandem.common.recipe_config import dump_config
from tandem.training.axolotl_yaml import axolotl_python, validate_axolotl_yaml, write_axolotl_yaml
from tandem.training.base_recipe_config import BaseRecipeConfig
from tandem.training.chat_data import read_chat_jsonl
from tandem.training.sft import distributed_state, run_sft

log = logging.getLogger(__name__)


@dataclass
class BaseRecipeResult:
    output_dir: Path
    axolotl_yaml: Path
    axolotl_check: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    lora_gguf: Path | None = None


def check_axolotl(recipe: BaseRecipeConfig, yaml_path: Path) -> dict[str, Any]:
    if not recipe.axolotl.check_schema:
        return {"validated": False, "skipped": "axolotl.check_schema is false"}
    python = axolotl_python(recipe.axolotl.python)
    if python is None:
        return {"validated": False, "skipped": "no Python with axolotl found (set axolotl.python or "
                "TANDEM_AXOLOTL_PYTHON, or create .cache/axolotl-venv as docs/TRAINING.md shows)"}
    normalized = validate_axolotl_yaml(yaml_path, python)
    return {"validated": True, "python": str(python), "adapter": normalized.get("adapter"),
            "lora_r": normalized.get("lora_r"), "num_epochs": normalized.get("num_epochs")}


def split_rows(recipe: BaseRecipeConfig) -> tuple[list[dict], list[dict]]:
    rows = [row for path in recipe.data.train for row in read_chat_jsonl(path)]
    if recipe.data.max_rows:
        rows = rows[: recipe.data.max_rows]
    if recipe.data.eval is not None:
        return rows, read_chat_jsonl(recipe.data.eval)
    order = list(range(len(rows)))
    random.Random(recipe.sft.seed).shuffle(order)
    n_eval = max(1, round(len(rows) * recipe.data.val_fraction))
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def _write_axolotl(recipe: BaseRecipeConfig, out: Path) -> tuple[Path, dict[str, Any]]:
    write_json(out / "recipe.json", dump_config(recipe))
    yaml_path = write_axolotl_yaml(recipe, out)
    check = check_axolotl(recipe, yaml_path)
    write_json(out / "axolotl_check.json", check)
    log.info("Axolotl YAML %s: %s", yaml_path, "validated" if check["validated"] else check["skipped"])
    Manifest(out).record("axolotl-config", "config", [yaml_path], config=dump_config(recipe), extra=check,
                         servable=False)
    return yaml_path, check


def run_base_recipe(recipe: BaseRecipeConfig) -> BaseRecipeResult:
    """Under `accelerate launch`/`torchrun` every process trains; only the main one writes files."""
    state = distributed_state()
    out = Path(recipe.sft.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if state.is_main_process:
        yaml_path, check = _write_axolotl(recipe, out)
    else:
        yaml_path, check = out / "axolotl.yaml", {"validated": False, "skipped": "not the main process"}
    result = BaseRecipeResult(out, yaml_path, check)
    if not recipe.run_native:
        return result

    train_rows, eval_rows = split_rows(recipe)
    trained_on = data_trained_on([*recipe.data.train, recipe.data.eval])
    sft = run_sft(recipe.sft, train_rows, eval_rows, trained_on=trained_on)
    result.metrics = sft.metrics
    if recipe.export_gguf and state.is_main_process:
        from tandem.training.lora_export import export_lora_gguf

        result.lora_gguf = export_lora_gguf(sft.adapter_dir, sft.base_hf_dir, out / "base_lora.gguf")
        Manifest(out).record("base-lora", "adapter", [result.lora_gguf], base_sha256=sft.base_gguf_sha256,
                             config=dump_config(recipe), metrics=sft.metrics,
                             extra={"trained_on": trained_on})
    return result
