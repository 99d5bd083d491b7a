"""`tandem train modifier --domain <name> --config <recipe.yaml> [key=value ...]`.

The `tandem train` group belongs to the training recipes; this module adds its `modifier`
subcommand through `register_modifier(train_subparsers)`. Heavy imports happen in the handler.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_CONFIG_DIR = Path("configs/modifiers")


def register_modifier(train_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = train_subparsers.add_parser(
        "modifier", help="Train, export, evaluate and record one domain's LoRA modifier.",
        description="LoRA SFT of the base on a domain's train split, exported to GGUF into the artifacts "
        "folder, compared with the base on held-out loss and the domain's task metric, and recorded in "
        "the manifest (servable only if it beats the base).")
    parser.add_argument("--domain", required=True, help="Domain name (served as tandem-<domain>).")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"Recipe YAML (default {DEFAULT_CONFIG_DIR}/<domain>.yaml).")
    parser.add_argument("--no-task-eval", action="store_true",
                        help="Skip the task metric (faster); the modifier is then recorded as not servable.")
    parser.add_argument("--from-sft", type=Path, default=None,
                        help="Take the SFT step from a finished run in this folder (e.g. trained on a GPU box with "
                        "the same recipe) and do the export, evaluation and manifest entry here.")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. sft.max_steps=20.")
    parser.set_defaults(func=_run)
    return parser


def _run(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig
    from tandem.training.modifiers.recipe import run_modifier

    path = args.config or DEFAULT_CONFIG_DIR / f"{args.domain}.yaml"
    config = load_config(ModifierConfig, path, [*args.overrides, f"domain={args.domain}"])
    result = run_modifier(config, task=not args.no_task_eval, sft_dir=args.from_sft)
    print(json.dumps({"domain": result.domain, "adapter": str(result.adapter_gguf), "servable": result.servable,
                      "reason": result.reason}))
    return 0
