"""`tandem distill`: SFT data from a teacher for each failure category."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tandem.common.recipe_config import add_override_argument, split_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
        help="Ask a teacher model for new tasks and answers like each failure category's.",
        description="For each category in failures.json (from `tandem analyze failures`), ask an OpenAI-"
        "compatible teacher for new tasks like the category's examples and for answers; check answers where "
        "a checker exists (numeric self-consistency, Python asserts in the sandbox), drop tasks that repeat "
        "the training data or each other, and write SFT rows to OUT/sft.jsonl. A dollar and token budget "
        "caps spending; replies are cached in OUT, so rerunning the command resumes a stopped run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--failures", required=True, help="failures.json from `tandem analyze failures`.")
    p.add_argument("--out", required=True, help="Output folder (also holds the response cache).")
    p.add_argument("--base-url", help="Teacher endpoint (default: the recipe's teacher.base_url).")
    p.add_argument("--model", help="Teacher model (default: the recipe's teacher.model).")
    p.add_argument("--training-data", nargs="*", default=[], help="Chat JSONL the new tasks must not repeat.")
    p.add_argument("--max-usd", type=float, help="Dollar cap (budget.max_usd).")
    p.add_argument("--max-tokens", type=int, help="Token cap (budget.max_tokens).")
    p.add_argument("--config", help="Recipe YAML (configs/curation/distill.yaml).")
    add_override_argument(p, "tasks_per_category=20 teacher.concurrency=4")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import ConfigError, load_config
    from tandem.training.distill.config import DistillConfig
    from tandem.training.distill.pipeline import distill

    flags = {
        "failures": args.failures,
        "out_dir": args.out,
        "teacher.base_url": args.base_url,
        "teacher.model": args.model,
        "budget.max_usd": args.max_usd,
        "budget.max_tokens": args.max_tokens,
    }
    # `--training-data a.jsonl k=v`: argparse hands a trailing override to the list option
    trailing, training_data = split_overrides(args.training_data)
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + args.overrides + trailing
    try:
        config = load_config(DistillConfig, args.config, overrides)
        if training_data:
            extra = [Path(p) for p in training_data]
            config = config.model_copy(update={"training_data": [*config.training_data, *extra]})
        stats = asyncio.run(distill(config))
    except ConfigError as exc:
        print(f"tandem distill: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in stats.items() if k != "per_category"}, indent=2))
    print(f"wrote {config.out_dir}/sft.jsonl")
    return 0
