"""`tandem validate [PATH...]`: check every shipped config against the schema that reads it.

Like torchtune's `tune validate`: each YAML under the given folders (default `configs/`) is loaded
the way its command loads it (`load_config`, so unknown keys and bad values are refused) and
every problem is reported at once. A YAML that no schema claims is itself an error, so a new
config cannot be shipped without being checked. CI runs it over `configs/`
(tests/common/test_validate_configs.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path, PurePath
from typing import Any

# (glob matched against the path's tail, "module:Class", load options); the first match wins.
SCHEMAS: list[tuple[str, str, dict[str, Any]]] = [
    ("compression/*.yaml", "tandem.compression.config:CompressConfig", {}),
    ("curation/default.yaml", "tandem.training.curation.config:CurationConfig", {}),
    ("curation/distill.yaml", "tandem.training.distill.config:DistillConfig", {}),
    ("curation/failures.yaml", "tandem.training.failures.config:FailureAnalysisConfig", {}),
    ("escalation/up-*.yaml", "tandem.services.up:UpConfig", {"with_defaults": True}),
    ("up.yaml", "tandem.services.up:UpConfig", {"with_defaults": True}),
    ("eval/prices.yaml", "tandem.common.prices:PriceTable", {}),
    ("modifiers/*.yaml", "tandem.training.modifiers.config:ModifierConfig", {}),
    ("routing/*.yaml", "tandem.training.routing.config:RouterRecipeConfig", {}),
    ("training/base_*.yaml", "tandem.training.base_recipe_config:BaseRecipeConfig", {}),
    ("training/accelerate_*.yaml", "accelerate", {}),
    ("loop/*.yaml", "tandem.pipeline.loop.config:LoopConfig", {}),
    ("pipeline/gates*.yaml", "tandem.pipeline.gates:GatesConfig", {}),
    ("pipeline/*.yaml", "pipeline", {}),
]


def schema_for(path: Path) -> tuple[str, dict[str, Any]] | None:
    return next(((target, options) for pattern, target, options in SCHEMAS if PurePath(path).match(pattern)),
                None)


def _accelerate(path: Path) -> None:
    """accelerate's own loader: it refuses unknown keys and wrong values."""
    from accelerate.commands.config.config_args import ClusterConfig

    ClusterConfig.from_yaml_file(str(path))


def _pipeline(path: Path) -> None:
    """The pipeline config and every stage's recipe config with the stage's overrides and wiring."""
    from tandem.common.recipe_config import load_config
    from tandem.pipeline.config import PipelineConfig
    from tandem.pipeline.dag import order
    from tandem.pipeline.plan import stages

    order(stages(load_config(PipelineConfig, path)))


def validate_file(path: Path) -> str | None:
    """None when `path` is valid, else the problem (every error of the file)."""
    from tandem.common.recipe_config import ConfigError, load_config

    found = schema_for(path)
    if found is None:
        return (f"no schema is registered for {path}: add it to tandem.pipeline.validate.SCHEMAS (or move it under "
                "the folder of the command that reads it)")
    target, options = found
    try:
        if target == "accelerate":
            _accelerate(path)
        elif target == "pipeline":
            _pipeline(path)
        else:
            module, _, name = target.partition(":")
            load_config(getattr(importlib.import_module(module), name), path, **options)
    except ConfigError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a schema that cannot even load is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    return None


def config_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml"))
        else:
            files.append(p)
    return files


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="Check configs against their schemas (unknown keys, bad values).",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", type=Path, default=[Path("configs")],
                   help="YAML files or folders (default: configs/).")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    files = config_files(args.paths)
    missing = [p for p in args.paths if not p.exists()]
    if missing or not files:
        print(f"tandem validate: nothing to check in {', '.join(map(str, missing or args.paths))}", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        problem = validate_file(path)
        failed += problem is not None
        print(f"{'ok  ' if problem is None else 'FAIL'} {path}" + (f"\n{_indent(problem)}" if problem else ""))
    print(f"{len(files) - failed}/{len(files)} configs valid")
    return 1 if failed else 0


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" for line in text.splitlines())
