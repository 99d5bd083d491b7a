"""The Axolotl YAML for the base recipe, derived from the same hyperparameters as the native run.

Key names follow Axolotl 0.19's schema (`axolotl.utils.schemas.config.AxolotlInputConfig`);
`validate_axolotl_yaml` checks the file against that schema in a virtualenv where axolotl is
installed (it pins its own transformers/peft/pydantic, so it never enters Tandem's environment).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tandem.training.base_recipe_config import BaseRecipeConfig

CHECK_SCRIPT = Path(__file__).with_name("axolotl_check.py")
DEFAULT_VENV_PYTHON = Path(".cache/axolotl-venv/bin/python")


class AxolotlValidationError(Exception):
    """Axolotl's schema rejected the YAML."""


def axolotl_config(recipe: BaseRecipeConfig, output_dir: Path) -> dict[str, Any]:
    sft, ax = recipe.sft, recipe.axolotl
    dataset = {"type": "chat_template", "field_messages": "messages", "roles_to_train": ["assistant"],
               "train_on_eos": "turn"}
    config: dict[str, Any] = {
        "base_model": ax.base_model,
        "load_in_4bit": ax.load_in_4bit,
        "adapter": "qlora" if ax.load_in_4bit else "lora",
        "lora_r": sft.lora.r,
        "lora_alpha": sft.lora.alpha,
        "lora_dropout": sft.lora.dropout,
        "chat_template": "tokenizer_default",
        "datasets": [dataset | {"path": str(Path(train).resolve())} for train in recipe.data.train],
        "dataset_prepared_path": ax.dataset_prepared_path,
        "sequence_len": sft.max_seq_len,
        "sample_packing": sft.packing,
        "pad_to_sequence_len": sft.packing,
        "num_epochs": sft.epochs,
        "micro_batch_size": sft.batch_size,
        "gradient_accumulation_steps": sft.grad_accum,
        "learning_rate": sft.learning_rate,
        "lr_scheduler": sft.lr_scheduler,
        "warmup_ratio": sft.warmup_ratio,
        "weight_decay": sft.weight_decay,
        "optimizer": ax.optimizer,
        "bf16": "auto",
        "gradient_checkpointing": ax.gradient_checkpointing,
        "flash_attention": ax.flash_attention,
        "eval_steps": sft.eval_steps,
        "save_steps": sft.eval_steps,
        "save_total_limit": sft.save_total_limit,
        "logging_steps": sft.logging_steps,
        "seed": sft.seed,
        "output_dir": str(output_dir.resolve() / "axolotl"),
    }
    if sft.lora.target_modules == "all-linear":
        config["lora_target_linear"] = True
    else:
        config["lora_target_modules"] = list(sft.lora.target_modules)
    if recipe.data.eval is not None:
        config["test_datasets"] = [dataset | {"path": str(Path(recipe.data.eval).resolve()), "split": "train"}]
    else:
        config["val_set_size"] = recipe.data.val_fraction
    if sft.max_steps > 0:
        config["max_steps"] = sft.max_steps
    if sft.early_stopping_patience:
        config["early_stopping_patience"] = sft.early_stopping_patience
        config["load_best_model_at_end"] = True
    if ax.liger_kernel:
        config["plugins"] = ["axolotl.integrations.liger.LigerPlugin"]
        config.update(liger_rope=True, liger_rms_norm=True, liger_glu_activation=True,
                      liger_fused_linear_cross_entropy=True)
    return config


def write_axolotl_yaml(recipe: BaseRecipeConfig, output_dir: Path) -> Path:
    path = output_dir / "axolotl.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Axolotl QLoRA run for Tandem's base recipe; written by `tandem train base`.\n"
              "# Launch: axolotl train axolotl.yaml  (multi-GPU: accelerate launch -m axolotl.cli.train)\n")
    path.write_text(header + yaml.safe_dump(axolotl_config(recipe, output_dir), sort_keys=False))
    return path


def axolotl_python(configured: Path | None = None) -> Path | None:
    """A Python with axolotl importable: the config's, $TANDEM_AXOLOTL_PYTHON, or .cache/axolotl-venv."""
    for candidate in (configured, os.environ.get("TANDEM_AXOLOTL_PYTHON"), DEFAULT_VENV_PYTHON):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def validate_axolotl_yaml(path: Path, python: Path) -> dict[str, Any]:
    """Axolotl's normalized config for `path`; raises AxolotlValidationError with its messages."""
    proc = subprocess.run([str(python), str(CHECK_SCRIPT), str(path)], capture_output=True, text=True, check=False,
                          env=os.environ | {"HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1"})
    if proc.returncode != 0:
        raise AxolotlValidationError(f"axolotl rejected {path}:\n{proc.stderr.strip()[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
