"""`tandem analyze failures`: categories of what a model gets wrong, from eval results or a live run."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from tandem.common.recipe_config import add_override_argument, split_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    analyze = subparsers.add_parser("analyze", help="Analyse evaluation results.")
    sub = analyze.add_subparsers(dest="analyze_command", metavar="COMMAND")
    p = sub.add_parser(
        "failures",
        help="Cluster a model's evaluation failures into named categories.",
        description="Collect the items a model failed (score below --pass-score) from `tandem eval` result "
        "rows, or run `tandem eval` first against --base-url; embed them with all-MiniLM-L6-v2, cluster them "
        "with k-means (k chosen by silhouette), name each category by its top TF-IDF terms and show "
        "examples. Writes failures.json (the input of `tandem distill`) and failures.md to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--results",
        type=Path,
        nargs="*",
        default=[],
        help="Eval result JSONL files or folders (tandem eval --out).",
    )
    p.add_argument("--base-url", help="Run `tandem eval` against this OpenAI-compatible endpoint first.")
    p.add_argument("--model", default="auto", help="`model` for the eval run.")
    p.add_argument(
        "--suite", default="gsm8k,mbpp,mmlu,bfcl", help="Suites for the eval run (comma-separated)."
    )
    p.add_argument(
        "--split",
        default="dev",
        choices=["train", "dev", "test"],
        help="Split for the eval run: failures feed training data, so not the test split.",
    )
    p.add_argument("--limit", type=int, default=None, help="Items per suite for the eval run.")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=None, help="Completion limit for the eval run.")
    p.add_argument("--out", type=Path, required=True, help="Output folder.")
    p.add_argument("--config", help="YAML with FailureAnalysisConfig fields.")
    add_override_argument(p, "k_min=4 embed_text=prompt_response")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import ConfigError, load_config
    from tandem.training.failures.analyze import analyze
    from tandem.training.failures.cluster import ClusteringError
    from tandem.training.failures.config import FailureAnalysisConfig
    from tandem.training.failures.rows import ResultsError

    try:
        # `--results a.jsonl k=v`: argparse hands a trailing override to the list option
        trailing, result_paths = split_overrides([str(r) for r in args.results])
        config = load_config(FailureAnalysisConfig, args.config,
                             [*args.overrides, *trailing, f"out_dir={args.out}"])
        results = [Path(r) for r in result_paths]
        if args.base_url:
            results.append(_run_eval(args))
        if not results and not config.results:
            raise ConfigError("give --results or --base-url")
        if results:
            config = config.model_copy(update={"results": results})
        report = analyze(config)
    except (ConfigError, ResultsError, ClusteringError) as exc:
        print(f"tandem analyze failures: {exc}", file=sys.stderr)
        return 2
    for cat in report["categories"]:
        print(f"{cat['size']:5d}  {cat['name']}  ({', '.join(cat['suites'])})")
    print(f"{report['failures']} failures in {report['k']} categories: {args.out}/failures.md")
    return 0


def _run_eval(args: argparse.Namespace) -> Path:
    from tandem.eval.runner import run_eval
    from tandem.eval.settings import EvalSettings

    out = args.out / "eval"
    settings = EvalSettings(
        base_url=args.base_url,
        model=args.model,
        suites=args.suite.split(","),
        split=args.split,
        limit=args.limit,
        concurrency=args.concurrency,
        out=out,
        max_tokens=args.max_tokens,
        api_key=os.environ.get("OPENAI_API_KEY") or "tandem",
    )
    print(asyncio.run(run_eval(settings))["line"])
    return out
