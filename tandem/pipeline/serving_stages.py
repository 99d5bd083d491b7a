"""The stages that build and check what is served: modifiers, router, escalation, validation.

Each runs the command or recipe that exists for it (`tandem build` for the modifiers, the router
recipe, `tandem escalation collect/train/calibrate`), pointed at this build's artifacts folder and
its compressed base, so the modifiers are trained on the base they are served with and the
escalation labels are answered by this build's own stack.
"""

from __future__ import annotations

from tandem.common.manifest import Manifest
from tandem.common.recipe_config import dump_config, load_config
from tandem.pipeline.config import PipelineConfig
from tandem.pipeline.dag import Stage, StageContext, StageResult, stage_dir
from tandem.pipeline.stages import entry_files, served_base
from tandem.pipeline.validation import escalation_figures


def modifiers_stage(cfg: PipelineConfig) -> Stage:
    from tandem.cli import build_parser
    from tandem.training.build import load_domain_configs

    section, out, artifacts = cfg.stages.modifiers, stage_dir(cfg.artifacts_dir, "modifiers"), cfg.artifacts_dir
    argv = ["build", "--artifacts", str(artifacts), "--config-dir", str(section.config_dir),
            "--domains", ",".join(section.domains), "--work-dir", str(out),
            "--cross-domain-limit", str(section.cross_domain_limit),
            "--irrelevance-limit", str(section.irrelevance_limit), "--eval-concurrency", "1",
            "--no-router", "--no-escalation"]
    if section.eval_threads:
        argv += ["--eval-threads", str(section.eval_threads)]
    argv += [*section.overrides, f"base_model={served_base(cfg)}"]
    args = build_parser().parse_args(argv)
    configs = load_domain_configs(args)

    def run(ctx: StageContext) -> StageResult:
        if args.func(args) != 0:
            raise RuntimeError("tandem build failed")
        modifiers = Manifest(artifacts).entries("modifier")
        files = [artifacts / f.path for e in modifiers.values() for f in e.files]
        return StageResult([*files, artifacts / "reports" / "modifiers" / "build.json"],
                           {"servable": {n: e.servable for n, e in modifiers.items()}})

    return Stage("modifiers", ("compress",), {"argv": argv, "recipes": [dump_config(c) for c in configs]}, run)


def router_stage(cfg: PipelineConfig) -> Stage:
    from tandem.training.routing.config import RouterRecipeConfig

    section = cfg.stages.router
    config = load_config(RouterRecipeConfig, section.config, [*section.overrides, f"artifacts_dir={cfg.artifacts_dir}"])

    def run(ctx: StageContext) -> StageResult:
        from tandem.training.routing.train import run as train_router

        report = train_router(config, measure_latency=False)
        accuracy = {s: m["accuracy"] for s, m in report["evaluations"]["router"].items()}
        return StageResult(entry_files(cfg.artifacts_dir, [config.name]), {"accuracy": accuracy})

    return Stage("router", (), dump_config(config), run)


def _served_deps(cfg: PipelineConfig, *names: str) -> tuple[str, ...]:
    return tuple(n for n in names if getattr(cfg.stages, n).enabled)


def labels_stage(cfg: PipelineConfig) -> Stage:
    section, out = cfg.stages.escalation_labels, stage_dir(cfg.artifacts_dir, "escalation_labels")

    def suites(limits: dict[str, int]) -> str:
        return ",".join(f"{s}={n}" for s, n in limits.items())

    def run(ctx: StageContext) -> StageResult:
        from tandem.cli import main
        from tandem.training.modifiers.task_eval import serving

        with serving(cfg.artifacts_dir, threads=cfg.threads) as url:
            for split, limits in (("train", section.train_suites), ("dev", section.dev_suites)):
                argv = ["escalation", "collect", "--suites", suites(limits), "--split", split, "--base-url", url,
                        "--model", section.model, "--concurrency", "2", "--out", str(out / f"labels_{split}.jsonl")]
                if main(argv) != 0:
                    raise RuntimeError(f"tandem {' '.join(argv)} failed")
        return StageResult([out / "labels_train.jsonl", out / "labels_dev.jsonl"])

    return Stage("escalation_labels", _served_deps(cfg, "compress", "modifiers", "router"),
                 section.model_dump(mode="json"), run)


def escalation_stage(cfg: PipelineConfig) -> Stage:
    from tandem.training.escalation.training_cli import DEFAULT_TARGET

    section, labels = cfg.stages.escalation, stage_dir(cfg.artifacts_dir, "escalation_labels")
    target = DEFAULT_TARGET
    if section.target:
        kind, _, value = section.target.partition("=")
        target = (kind, float(value))

    def run(ctx: StageContext) -> StageResult:
        from tandem.services.escalation.models import ANSWER_ENTRY, DIFFICULTY_ENTRY, THRESHOLDS_ENTRY
        from tandem.training.escalation.calibrate import calibrate_threshold
        from tandem.training.escalation.train import train_escalation_models

        train, dev = labels / "labels_train.jsonl", labels / "labels_dev.jsonl"
        train_escalation_models(train, dev, cfg.artifacts_dir)
        calibrate_threshold(dev, cfg.artifacts_dir, target, None)
        return StageResult(entry_files(cfg.artifacts_dir, [DIFFICULTY_ENTRY, ANSWER_ENTRY, THRESHOLDS_ENTRY]),
                           escalation_figures(cfg.artifacts_dir))

    return Stage("escalation", ("escalation_labels",), {"target": list(target)}, run)


def validation_stage(cfg: PipelineConfig) -> Stage:
    from tandem.pipeline.gates import GatesConfig
    from tandem.pipeline.validation import validate_build

    section = cfg.stages.validation
    gates = load_config(GatesConfig, section.gates)
    out = stage_dir(cfg.artifacts_dir, "validation")

    def run(ctx: StageContext) -> StageResult:
        paths, figures = validate_build(cfg.artifacts_dir, served_base(cfg), section, gates, ctx.upstream, out,
                                        threads=cfg.threads)
        return StageResult(paths, figures)

    deps = _served_deps(cfg, "compress", "modifiers", "router", "escalation")
    return Stage("validation", deps, {"section": section.model_dump(mode="json"), "gates": dump_config(gates)},
                 run, inputs=[section.gates])


