"""`tandem pipeline --config configs/pipeline/<name>.yaml [key=value ...]`: raw data to served system.

Runs the stages of docs/PIPELINE.md in dependency order into one artifacts folder; a rerun skips
every stage whose inputs and settings are unchanged. `tandem up --artifacts <artifacts_dir>`
serves the result.
"""

from __future__ import annotations

import argparse
import json
import sys

from tandem.common.recipe_config import add_override_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pipeline", help="Build everything from raw data to the served system, cached by stage.",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="Pipeline YAML, e.g. configs/pipeline/tiny.yaml.")
    p.add_argument("--plan", action="store_true", help="Validate every stage's config and print the stages; run nothing.")
    add_override_argument(p, "stages.compress.enabled=false 'stages.modifiers.domains=[code]'")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.manifest import write_json
    from tandem.common.recipe_config import ConfigError, load_config
    from tandem.pipeline.config import PipelineConfig
    from tandem.pipeline.dag import PipelineError, order, run_pipeline
    from tandem.pipeline.plan import stages

    try:
        config = load_config(PipelineConfig, args.config, args.overrides)
        planned = order(stages(config))
    except (ConfigError, PipelineError, FileNotFoundError, ValueError) as exc:
        print(f"tandem pipeline: {exc}", file=sys.stderr)
        return 2
    if args.plan:
        for stage in planned:
            print(f"{stage.name:18s} <- {', '.join(stage.deps) or '-'}")
        return 0
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    try:
        runs = run_pipeline(planned, config.artifacts_dir)
    except PipelineError as exc:
        print(f"tandem pipeline: {exc}", file=sys.stderr)
        return 1
    timings = {r.name: {"status": r.status, "seconds": round(r.seconds, 1)} for r in runs}
    write_json(config.artifacts_dir / "reports" / "pipeline" / "last_run.json", timings)
    print(json.dumps(timings, indent=2))
    print(f"serve it: tandem up --artifacts {config.artifacts_dir}")
    return 0
