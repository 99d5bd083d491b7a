"""`tandem loop --config configs/loop/<name>.yaml [key=value ...]`: one turn of the loop (run.py).

Exit status: 0 when a candidate was promoted or there was nothing to learn yet, 1 when the candidate
did not pass the gate, 3 when it was promoted and then rolled back (its live check failed), 2 on a
configuration or input error. With `retrain: [modifier, router]` the worst part decides (3, then 1).
"""

from __future__ import annotations

import argparse
import json
import sys

from tandem.common.recipe_config import add_override_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "loop", help="Learn from the router's traffic log: failure clusters -> teacher rows -> retrained "
        "modifier, and corrected-domain feedback -> refit router; each through a strict gate, then hot-reload "
        "promotion with rollback.",
        description=__doc__ + "\nSteps: export, [router: rows, check, split, refit, gate, promote], failures, "
        "distill, check, split, train, gate, promote (tandem/pipeline/loop/run.py, router.py; docs/PIPELINE.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="Loop YAML, e.g. configs/loop/default.yaml.")
    add_override_argument(p, "promote.router_url=http://127.0.0.1:8000 distill.budget.max_usd=2")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from tandem.common.recipe_config import ConfigError, load_config
    from tandem.pipeline.loop.config import LoopConfig
    from tandem.pipeline.loop.run import internal_token_present, run_loop
    from tandem.training.failures.cluster import ClusteringError
    from tandem.training.failures.rows import ResultsError

    try:
        config = load_config(LoopConfig, args.config, args.overrides)
        if config.promote.enabled and config.promote.router_url and not internal_token_present():
            raise ConfigError("promote.router_url needs the stack's internal credential in TANDEM_INTERNAL_TOKEN "
                              "(or TANDEM_INTERNAL_TOKEN_FILE) to call /admin/reload")
        report = run_loop(config)
    except (ConfigError, ResultsError, ClusteringError, FileNotFoundError) as exc:
        print(f"tandem loop: {exc}", file=sys.stderr)
        return 2
    summary = {k: report.get(k) for k in ("status", "why", "rows", "timings_s", "seconds")}
    summary["gate"] = (report.get("gate") or {}).get("reason")
    summary["promotion"] = report.get("promotion")
    summary["spent_usd_total"] = (report.get("distill") or {}).get("spent_usd_total")
    summary["parts"] = report.get("parts")
    if "router" in report:
        router = report["router"]
        summary["router"] = {"status": router.get("status"), "why": router.get("why"), "rows": router.get("rows"),
                             "gate": (router.get("gate") or {}).get("reason"), "promotion": router.get("promotion")}
    print(json.dumps(summary, indent=2, default=str))
    return {"promoted": 0, "stopped": 0, "not_promoted": 1, "rolled_back": 3}[report["status"]]
