"""The `tandem` command. Each subcommand lives in its own module exposing `register(subparsers)`;
modules are imported lazily so `tandem up` never pays for torch."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (command name, module path). The module's `register(subparsers)` adds the parser and sets
# `func` on it; heavy imports happen inside the handler, not at module import.
COMMAND_MODULES: list[str] = [
    "tandem.services.up",
    "tandem.training.curation.cli",
    "tandem.eval.cli",
    "tandem.training.build",
    "tandem.training.routing.cli",
    "tandem.training.failures.cli",
    "tandem.training.traffic.cli",
    "tandem.training.distill.cli",
    "tandem.training.cli",
    "tandem.compression.cli",
    "tandem.training.escalation.cli",
    "tandem.pipeline.validate",
    "tandem.pipeline.cli",
    "tandem.pipeline.loop.cli",
    "tandem.pipeline.publish",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandem",
        description="Serve a small base model plus domain modifiers behind an OpenAI-compatible "
        "endpoint, and build the artifacts it loads.",
    )
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default INFO).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _late_overrides(parser, args, extra)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result = args.func(args)
    return int(result or 0)


def _late_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """`key=value` overrides may also follow options (`tandem data curate IN --out D k=v`): argparse
    fills a positional list once, so the later ones arrive here and join it."""
    from tandem.common.recipe_config import OVERRIDE

    if not extra:
        return
    target = next((name for name in ("overrides", "inputs") if isinstance(getattr(args, name, None), list)), None)
    if target is None or not all(OVERRIDE.match(e) for e in extra):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    getattr(args, target).extend(extra)


if __name__ == "__main__":
    sys.exit(main())
