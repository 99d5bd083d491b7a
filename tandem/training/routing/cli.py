"""`tandem router ...`: train the domain router, or score a built one through its serving path."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("router", help="Train and evaluate the domain router.",
                                   description="Train and evaluate the domain router (docs/ROUTER.md).")
    sub = parser.add_subparsers(dest="router_command", metavar="ACTION", required=True)

    train = sub.add_parser("train", help="Build data, export int8 MiniLM, fit heads, report, record in the manifest.",
                           description="Run the router recipe. Overrides are dotted key=value pairs, e.g. "
                           "encoder.max_tokens=48 sources.mmlu.limit=500 artifacts_dir=/tmp/a.")
    train.add_argument("--config", default="configs/routing/router.yaml", help="Recipe YAML (default: %(default)s).")
    train.add_argument("--no-latency", action="store_true", help="Skip the latency measurement in the report.")
    train.add_argument("overrides", nargs="*", help="key=value overrides of the config.")
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="Route the real-prompt test set, the hand-written set (and test split) "
                        "through the built artifact.",
                        description="Load the router as the service does (manifest, sha256 checks) and score it "
                        "against the keyword baseline on the hand-labelled real-prompt test set and the hand-written "
                        "prompts and, with --test, the in-distribution test split.")
    ev.add_argument("--config", default="configs/routing/router.yaml", help="Recipe YAML (default: %(default)s).")
    ev.add_argument("--test", action="store_true", help="Also route every test-split example (slower).")
    ev.add_argument("overrides", nargs="*", help="key=value overrides of the config.")
    ev.set_defaults(func=_eval)


def _train(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import load_config
    from tandem.training.routing.config import RouterRecipeConfig
    from tandem.training.routing.train import run

    config = load_config(RouterRecipeConfig, args.config, args.overrides)
    report = run(config, measure_latency=not args.no_latency)
    summary = {s: m["accuracy"] for s, m in report["evaluations"]["router"].items()}
    print(json.dumps({"accuracy": summary, "size_mb": report["size_mb"],
                      "report": str(config.output_dir / "report.md")}, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import load_config
    from tandem.training.routing.config import RouterRecipeConfig
    from tandem.training.routing.served_eval import served_accuracy

    config = load_config(RouterRecipeConfig, args.config, args.overrides)
    print(json.dumps(served_accuracy(config, include_test=args.test), indent=2))
    return 0
