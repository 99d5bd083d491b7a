"""`tandem train <recipe>`: the fine-tuning recipes.

This module owns the `train` group and its `base` recipe. Other recipes join the group through
TRAIN_SUBCOMMANDS: each entry names a function `f(train_subparsers)` that adds one subcommand
(e.g. `tandem train modifier`, owned by tandem.training.modifiers). Heavy imports stay in handlers.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

DEFAULT_BASE_CONFIG = Path("configs/training/base_qlora.yaml")
TRAIN_SUBCOMMANDS: list[str] = [
    "tandem.training.modifiers.cli:register_modifier",
]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    train = subparsers.add_parser("train", help="Fine-tune the base or a domain modifier (LoRA recipes).",
                                  description="Fine-tuning recipes. Each takes a YAML config plus key=value "
                                  "overrides and writes its resolved config, metrics and manifest beside "
                                  "its outputs.")
    recipes = train.add_subparsers(dest="recipe", metavar="RECIPE")
    register_base(recipes)
    for spec in TRAIN_SUBCOMMANDS:
        module, function = spec.split(":")
        getattr(importlib.import_module(module), function)(recipes)
    train.set_defaults(func=lambda _args: train.print_help() or 2)
    return train


def register_base(recipes: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = recipes.add_parser(
        "base", help="QLoRA of the base on curated chat data: Axolotl YAML + native run.",
        description="Write the Axolotl QLoRA YAML for the recipe (validated with Axolotl's schema where an "
        "axolotl virtualenv exists), then run the native peft/transformers runner with the same "
        "hyperparameters (CPU or one GPU; `accelerate launch` for several). Outputs: adapter/, "
        "base_lora.gguf, axolotl.yaml, config/metrics JSON, loss_curve.png, manifest.json.",
        epilog="example: tandem train base --config configs/training/base_qlora.yaml "
        "data.train=artifacts/data/curated.jsonl sft.max_steps=20")
    parser.add_argument("--config", type=Path, default=DEFAULT_BASE_CONFIG,
                        help=f"Recipe YAML (default {DEFAULT_BASE_CONFIG}).")
    parser.add_argument("--axolotl-only", action="store_true",
                        help="Only write and validate the Axolotl YAML; skip the native run.")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. sft.max_steps=20 "
                        "sft.output_dir=/tmp/base data.max_rows=200.")
    parser.set_defaults(func=_run_base)
    return parser


def _run_base(args: argparse.Namespace) -> int:
    import json

    from tandem.common.recipe_config import load_config
    from tandem.training.base_recipe import run_base_recipe
    from tandem.training.base_recipe_config import BaseRecipeConfig

    overrides = list(args.overrides) + (["run_native=false"] if args.axolotl_only else [])
    recipe = load_config(BaseRecipeConfig, args.config, overrides)
    result = run_base_recipe(recipe)
    print(f"Axolotl YAML: {result.axolotl_yaml} "
          f"({'validated by axolotl' if result.axolotl_check['validated'] else result.axolotl_check['skipped']})")
    if result.metrics:
        keys = ("train_loss", "eval_loss", "best_eval_loss", "global_step", "early_stopped", "tokens_per_s")
        print(json.dumps({k: result.metrics.get(k) for k in keys}, indent=2))
        print(f"adapter: {result.output_dir / 'adapter'}  GGUF LoRA: {result.lora_gguf}")
    return 0
