"""The `train` and `calibrate` steps of `tandem escalation` (see cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TARGET = ("quality", 0.8)  # also what `tandem build` calibrates for


def _target(value: str) -> tuple[str, float]:
    kind, _, number = value.partition("=")
    if kind not in ("quality", "max_rate") or not number:
        raise argparse.ArgumentTypeError("target is quality=F (fraction of the strong model's quality gain) "
                                         "or max_rate=F (largest share of requests escalated)")
    return kind, float(number)


def register_steps(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="Fit the difficulty and answer-confidence models on labels.")
    train.add_argument("--train", type=Path, required=True, help="labels JSONL of train-split items")
    train.add_argument("--heldout", type=Path, required=True, help="labels JSONL of dev-split items")
    train.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    train.set_defaults(func=_train)

    calibrate = sub.add_parser("calibrate", help="Cost/quality curve, APGR, CPT and the escalation threshold.")
    calibrate.add_argument("--heldout", type=Path, required=True, help="labels JSONL of held-out items")
    calibrate.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    calibrate.add_argument("--target", type=_target, default=DEFAULT_TARGET,
                           help="quality=F or max_rate=F (default {}={})".format(*DEFAULT_TARGET))
    calibrate.add_argument("--strong", type=Path, default=None,
                           help="labels JSONL of the strong model on the same items; default: gold answers "
                           "stand in for it (score 1 on every item)")
    calibrate.set_defaults(func=_calibrate)


def _train(args: argparse.Namespace) -> int:
    from tandem.training.escalation.train import train_escalation_models
    report = train_escalation_models(args.train, args.heldout, args.artifacts)
    print(report.summary_line())
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from tandem.training.escalation.calibrate import calibrate_threshold
    report = calibrate_threshold(args.heldout, args.artifacts, args.target, args.strong)
    print(report.summary_line())
    return 0
