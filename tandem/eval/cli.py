"""`tandem eval`: score any OpenAI-compatible endpoint on the public benchmarks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tandem.eval.settings import ALL_SUITES, DEFAULT_MAX_TOKENS

EXTRA_SUITES = ["math"]  # the full MATH test split (5,000 items; math500 is its standard subset)


def _suites(value: str) -> list[str]:
    suites = [s.strip() for s in value.split(",") if s.strip()]
    if suites == ["all"]:
        return list(ALL_SUITES)
    unknown = [s for s in suites if s not in ALL_SUITES + EXTRA_SUITES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown suite(s) {', '.join(unknown)}; choose from "
            f"{', '.join(ALL_SUITES + EXTRA_SUITES)} or 'all'"
        )
    return suites


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="Score an OpenAI-compatible endpoint on public benchmarks.",
        description="Score an OpenAI-compatible endpoint (Tandem's router, one worker, a fallback, or "
        "any other server) on HumanEval, MBPP, GSM8K, MATH-500, ARC, MMLU, BFCL and the domain "
        "router. Writes one JSONL row per item, summary.json and summary.md under --out; the last "
        "stdout line is the summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--suite",
        dest="suites",
        type=_suites,
        default=list(ALL_SUITES),
        help=f"comma-separated suites, or 'all': {', '.join(ALL_SUITES + EXTRA_SUITES)}",
    )
    p.add_argument("--base-url", required=True, help="OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", required=True, help="`model` for every request: auto, tandem-base, gpt-4o, ...")
    p.add_argument("--api-key", default=None, help="bearer token (default: $OPENAI_API_KEY, else 'tandem')")
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "dev", "test"],
        help="dataset split to evaluate (see tandem/eval/splits.py)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="items per suite: a deterministic sample, ordered by the sha256 of the id",
    )
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument("--out", type=Path, default=Path("eval-results"), help="output folder")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature")
    p.add_argument("--seed", type=int, default=0, help="sampling seed sent with every request")
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help=f"cap on every suite's completion limit (defaults per suite: {DEFAULT_MAX_TOKENS})",
    )
    p.add_argument(
        "--timeout", dest="request_timeout_s", type=float, default=600.0, help="seconds per request"
    )
    p.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="artifacts folder whose manifests' extra.trained_on drive the contamination guard (default: "
        "what `tandem up` serves by default: ./artifacts when it holds a manifest, else the bundled "
        "tandem/default_artifacts)",
    )
    p.add_argument(
        "--allow-contaminated",
        action="store_true",
        help="score items an artifact trained on, flagged and left out of the score",
    )
    p.add_argument(
        "--prices", type=Path, default=None, help="price table YAML (default configs/eval/prices.yaml)"
    )
    p.add_argument(
        "--no-cache", dest="use_cache", action="store_false", help="ignore and do not fill the cache"
    )
    p.add_argument(
        "--model-identity",
        default="",
        help="text that identifies the served weights (e.g. a GGUF sha256), part of the cache key",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from tandem.eval.contamination import ContaminationError
    from tandem.eval.runner import run_eval
    from tandem.eval.settings import EvalSettings

    for noisy in ("httpx", "httpx2"):  # the openai client's transports log one INFO line per request
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.artifacts is None:
        from tandem.common.served_artifacts import served_artifacts_dir

        args.artifacts = served_artifacts_dir()
    fields = {k: v for k, v in vars(args).items() if k in EvalSettings.model_fields and v is not None}
    fields["api_key"] = args.api_key or os.environ.get("OPENAI_API_KEY") or "tandem"
    settings = EvalSettings(**fields)
    try:
        summary = asyncio.run(run_eval(settings))
    except ContaminationError as exc:
        print(f"tandem eval: {exc}", file=sys.stderr)
        return 3
    print(summary["line"], flush=True)
    return 0
