"""`tandem build`: the whole artifact chain for the embedded default, in bounded time.

First the domain router (`tandem router train`, skipped with --no-router) and the escalation
models with their threshold, fitted on the labels under docs/escalation/ (`tandem escalation
train` + `calibrate`, skipped with --no-escalation). Then for each domain (default code,
reasoning, automation; configs under `configs/modifiers/`): data -> LoRA SFT -> GGUF export ->
held-out loss, each recorded in the manifest as not yet servable. Then one `tandem up` serves base + all candidates from a staging folder, and the
evaluation harness scores every model on every domain's task slice: a modifier's own slice gates
it, the other slices say what it costs elsewhere. Finally each entry is recorded with its verdict,
`reports/modifiers/eval_table.md` is written, and `tandem up --artifacts <dir>` serves base +
the servable modifiers. `key=value` overrides apply to every domain's recipe (e.g.
`sft.max_steps=20` for a quicker build), `<domain>:key=value` to one domain's.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tandem.training.modifiers.evaluation_plan import adapter_digests, evaluation_plan

log = logging.getLogger("tandem.training.build")
DEFAULT_DOMAINS = ["code", "reasoning", "automation"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build", help="Build the artifacts for the embedded default: the domain router, the escalation models "
        "and the three domain modifiers, evaluated.",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="Artifacts folder (default artifacts).")
    parser.add_argument("--config-dir", type=Path, default=Path("configs/modifiers"),
                        help="Folder of <domain>.yaml recipes (default configs/modifiers).")
    parser.add_argument("--domains", default=",".join(DEFAULT_DOMAINS), help="Comma-separated domains.")
    parser.add_argument("--work-dir", type=Path, default=Path("build/modifiers"),
                        help="Checkpoints and intermediate files (default build/modifiers).")
    parser.add_argument("--cross-domain-limit", type=int, default=5,
                        help="Items per other domain's slice when measuring a modifier's cost there (0: skip).")
    parser.add_argument("--irrelevance-limit", type=int, default=5,
                        help="BFCL irrelevance items every model answers (calling a tool when none fits; 0: skip).")
    parser.add_argument("--eval-concurrency", type=int, default=4,
                        help="Requests in flight per model and stack while scoring (1 on a heavily loaded CPU).")
    parser.add_argument("--eval-replicas", type=int, default=1,
                        help="Independent `tandem up` stacks the scoring requests are spread over (default 1).")
    parser.add_argument("--eval-slots", type=int, default=4,
                        help="Slots per worker while scoring; 1 decodes every answer alone, so answers do not "
                        "depend on batch composition (the gate's runs use 1; default 4 for speed).")
    parser.add_argument("--eval-threads", type=int, default=None,
                        help="llama.cpp threads per worker while scoring (default: tandem up's split of the cores).")
    parser.add_argument("--task-matrix", type=Path, default=None,
                        help="Scores of every model on every slice (`python -m tandem.training.modifiers.task_matrix`, "
                        "e.g. run on a bigger machine): read from this file instead of scoring here; its adapter "
                        "sha256s must be the ones exported here.")
    parser.add_argument("--router-config", type=Path, default=Path("configs/routing/router.yaml"),
                        help="Domain router recipe, trained first into the same artifacts folder (default %(default)s).")
    parser.add_argument("--no-router", action="store_true", help="Skip the domain router (modifiers only).")
    parser.add_argument("--escalation-labels", type=Path, default=Path("docs/escalation"),
                        help="Folder with labels_train.jsonl.gz and labels_dev.jsonl.gz (`tandem escalation "
                        "collect`): the escalation models are fitted and calibrated on them (default %(default)s).")
    parser.add_argument("--no-escalation", action="store_true", help="Skip the escalation models.")
    parser.add_argument("--from-sft", type=Path, default=None,
                        help="Folder with <domain>/sft from SFT runs made elsewhere (e.g. a GPU box): skip training here.")
    parser.add_argument("overrides", nargs="*",
                        help="key=value overrides for every domain's recipe; <domain>:key=value for one domain.")
    parser.set_defaults(func=run_build)


BUILD_FOLDERS = {"artifacts_dir": "--artifacts", "work_dir": "--work-dir", "sft.output_dir": "--work-dir"}


def load_domain_configs(args: argparse.Namespace) -> list:
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig

    for override in args.overrides:  # the build's own folders: one way to set each, or the reports go elsewhere
        key = override.split("=", 1)[0].split(":")[-1]
        if key in BUILD_FOLDERS:
            raise SystemExit(f"{key} is the build's own folder: set it with {BUILD_FOLDERS[key]}, not {override!r}")
    configs = []
    for domain in [d.strip() for d in args.domains.split(",") if d.strip()]:
        own = [o.split(":", 1)[1] for o in args.overrides if o.startswith(f"{domain}:")]
        shared = [o for o in args.overrides if ":" not in o.split("=", 1)[0]]
        overrides = [f"artifacts_dir={args.artifacts}", f"work_dir={args.work_dir / domain}",
                     f"sft.output_dir={args.work_dir / domain / 'sft'}", *shared, *own]
        configs.append(load_config(ModifierConfig, args.config_dir / f"{domain}.yaml", overrides))
    return configs


def train_router(config_path: Path, artifacts: Path) -> None:
    """The domain router recipe (docs/ROUTER.md) into `artifacts`, without its latency bench."""
    from tandem.common.recipe_config import load_config
    from tandem.training.routing.config import RouterRecipeConfig
    from tandem.training.routing.train import run

    config = load_config(RouterRecipeConfig, config_path, [f"artifacts_dir={artifacts}"])
    report = run(config, measure_latency=False)
    log.info("router: %s", {s: m["accuracy"] for s, m in report["evaluations"]["router"].items()})


def train_escalation(labels: Path, artifacts: Path) -> None:
    """Difficulty and answer-confidence models and their threshold (the calibrate CLI's default target)."""
    from tandem.training.escalation.calibrate import calibrate_threshold
    from tandem.training.escalation.train import train_escalation_models
    from tandem.training.escalation.training_cli import DEFAULT_TARGET

    train, dev = labels / "labels_train.jsonl.gz", labels / "labels_dev.jsonl.gz"
    log.info("escalation: %s", train_escalation_models(train, dev, artifacts).summary_line())
    log.info("escalation threshold: %s", calibrate_threshold(dev, artifacts, DEFAULT_TARGET, None).summary_line())


def read_task_matrix(path: Path, adapters: dict[str, Path], scales: dict[str, float] | None = None,
                     guards: dict[str, float | None] | None = None,
                     groundings: dict[str, float | None] | None = None) -> dict:
    """A matrix scored elsewhere, refused unless it scored exactly these adapter files, each at the
    LoRA scale its config serves it at (`scales`, default 1.0; matrices without the field: 1.0) and
    behind the tool-fit guard and argument-grounding check its config sets (`guards`, `groundings`,
    default none)."""
    saved, exported = json.loads(path.read_text()), adapter_digests(adapters)
    scored_at = {m: saved.get("adapters_lora_scale", {}).get(m, 1.0) for m in adapters}
    served_at = {m: (scales or {}).get(m, 1.0) for m in adapters}
    if scored_at != served_at:
        raise SystemExit(f"{path} scored the adapters at LoRA scales {scored_at}, the configs serve them at {served_at}")
    for field, served, check in (("adapters_tool_fit", guards, "tool-fit guards"),
                                 ("adapters_tool_grounding", groundings, "argument-grounding checks")):
        scored_behind = {m: (saved.get(field) or {}).get(m) for m in adapters}
        served_behind = {m: (served or {}).get(m) for m in adapters}
        if scored_behind != served_behind:
            raise SystemExit(f"{path} scored the adapters behind {check} {scored_behind}, the configs serve them "
                             f"behind {served_behind}")
    if saved.get("complete") is False:
        raise SystemExit(f"{path} is a partial matrix (its run stopped after {sorted(saved['matrix'])}); gate on a whole one")
    if saved["adapters_sha256"] != exported:
        raise SystemExit(f"{path} scored other adapter files than the ones exported here "
                         f"({saved['adapters_sha256']} vs {exported})")
    return saved["matrix"]


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of the block as `timings[stage]` (seconds)."""
    started = time.monotonic()
    yield
    timings[stage] = time.monotonic() - started


def run_build(args: argparse.Namespace) -> int:
    from tandem.common.manifest import write_json
    from tandem.common.model_files import resolve_model_path
    from tandem.training.modifiers.eval_table import eval_table
    from tandem.training.modifiers.recipe import finalize_modifier, record_modifier, train_modifier
    from tandem.training.modifiers.task_eval import BASE_MODEL, score_matrix, serving_pool, stage_artifacts

    started = time.monotonic()
    configs = load_domain_configs(args)  # every config validated before any heavy work
    bases = {c.base_model for c in configs}
    if len(bases) != 1:
        raise SystemExit(f"all domains must share one base model, got {sorted(bases)}")
    timings: dict[str, float] = {}
    if not args.no_router:
        with timed(timings, "router"):
            train_router(args.router_config, args.artifacts)
    if not args.no_escalation:
        with timed(timings, "escalation"):
            train_escalation(args.escalation_labels, args.artifacts)
    trained = {}
    for config in configs:
        with timed(timings, f"train_{config.domain}"):
            adapter, sft, metrics = train_modifier(
                config, args.from_sft / config.domain / "sft" if args.from_sft else None)
            record_modifier(config, adapter, sft.base_gguf_sha256, metrics, False, "task metric not measured yet")
        trained[config.domain] = (config, adapter, sft, metrics)

    with timed(timings, "task_eval"):
        adapters = {f"tandem-{d}": adapter for d, (_, adapter, _, _) in trained.items()}
        scales = {f"tandem-{d}": c.serving.lora_scale for d, (c, _, _, _) in trained.items()}
        guards = {f"tandem-{d}": c.serving.tool_fit_min_similarity for d, (c, _, _, _) in trained.items()}
        groundings = {f"tandem-{d}": c.serving.tool_args_min_grounding for d, (c, _, _, _) in trained.items()}
        if args.task_matrix and args.task_matrix.is_file():
            matrix = read_task_matrix(args.task_matrix, adapters, scales, guards, groundings)
        else:
            staging = args.work_dir / "staging-artifacts"
            stage_artifacts(staging, resolve_model_path(configs[0].base_model), adapters, scales, guards,
                            groundings)
            slices, plan, full = evaluation_plan(configs, adapters, args.cross_domain_limit, args.irrelevance_limit)
            with serving_pool(staging, args.eval_replicas, args.eval_threads, args.eval_slots) as urls:
                matrix = score_matrix(urls, slices, plan, configs[0].evaluation.confidence,
                                      cross_limit=args.cross_domain_limit or None, concurrency=args.eval_concurrency,
                                      full_slices=full)

    results = []
    for domain, (config, adapter, sft, metrics) in trained.items():
        own = matrix[domain]
        keep = (BASE_MODEL, f"tandem-{domain}")
        mine = {**own, "models": {m: own["models"][m] for m in keep},
                "vs_base": {m: v for m, v in own["vs_base"].items() if m in keep},
                "items": {m: own["items"][m] for m in keep}}
        metrics["cost_elsewhere"] = {other: matrix[other]["vs_base"][f"tandem-{domain}"]
                                     for other in matrix if other != domain and f"tandem-{domain}" in matrix[other]["vs_base"]}
        results.append(finalize_modifier(config, adapter, sft, metrics, mine, metrics["cost_elsewhere"]))
    timings["total"] = time.monotonic() - started
    reports = args.artifacts / "reports" / "modifiers"
    write_json(reports / "build.json", {"timings_s": timings, "matrix": {d: {k: v for k, v in m.items() if k != "items"}
                                                                         for d, m in matrix.items()},
                                        "servable": {r.domain: r.servable for r in results}})
    (reports / "eval_table.md").write_text(eval_table(matrix, {c.domain: trained[c.domain][3] for c in configs}))
    print(json.dumps({"servable": {r.domain: r.servable for r in results}, "timings_s": timings}))
    print(f"serve them: tandem up --artifacts {args.artifacts}")
    return 0
