"""`tandem data curate`: the curation recipe from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys

from tandem.common.recipe_config import split_overrides
from tandem.training.curation.formats import ALIASES, FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="Prepare training data.")
    data_sub = data.add_subparsers(dest="data_command", metavar="COMMAND")
    formats = ", ".join(f"{name} ({fmt.description})" for name, fmt in FORMATS.items())
    p = data_sub.add_parser(
        "curate",
        help="Normalize, language-filter, deduplicate and tag instruction data.",
        description="Read instruction data in its native formats and write one chat schema "
        "(messages, source, id, lang, domain) to OUT/curated.jsonl, with stats.json and report.md. "
        f"Formats: {formats}. Aliases: {', '.join(ALIASES)}. Containers: JSONL, JSON array or Parquet, "
        "optionally gzip-compressed, detected from the bytes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT | KEY=VALUE",
        help="Data files, read in order (the first copy of a duplicate wins); PATH::FORMAT forces "
        "one file's format. They replace the recipe's `inputs`. An argument that starts with a dotted "
        "name and `=` overrides a recipe field instead, e.g. near_dedup.threshold=0.85 "
        "'language.keep=[en,fr]'.",
    )
    p.add_argument("--out", required=True, help="Output folder.")
    p.add_argument("--config", help="Recipe YAML (configs/curation/default.yaml shows every field).")
    p.add_argument("--format", help="Force this format for every input without its own ::FORMAT.")
    p.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="Worker processes for parsing, filtering and hashing.",
    )
    p.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import ConfigError, load_config
    from tandem.training.curation.config import CurationConfig
    from tandem.training.curation.pipeline import curate, inputs_from_args

    overrides, inputs = split_overrides(args.inputs)
    overrides += [f"out_dir={args.out}", f"workers={args.workers}"]
    if args.no_progress:
        overrides.append("progress=false")
    try:
        config = load_config(CurationConfig, args.config, overrides)
        if inputs:  # command-line inputs replace the recipe's
            config = config.model_copy(update={"inputs": inputs_from_args(inputs, args.format)})
        summary = curate(config)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"tandem data curate: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "records_read",
                    "records_kept",
                    "exact_duplicates_removed",
                    "near_duplicates_removed",
                    "bad_records",
                    "seconds",
                )
            },
            indent=2,
        )
    )
    print(f"wrote {config.out_dir}/curated.jsonl, stats.json, report.md")
    return 0
