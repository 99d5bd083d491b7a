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
    "tandem.up",
    "tandem.curation.cli",
    "tandem.eval.cli",
    "tandem.build",
    "tandem.routing.cli",
    "tandem.failures.cli",
    "tandem.distill.cli",
    "tandem.training.cli",
    "tandem.compression.cli",
    "tandem.escalation.cli",
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
