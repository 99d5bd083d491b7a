"""The pipeline's stages, built from a PipelineConfig; each wraps the recipe its command runs.

    curate ─┐
    distill ┴─ base_sft ── merge ── compress ─┬─ modifiers ─┐
                                  router ─────┼─────────────┼─ escalation_labels ── escalation ─┐
                                              └─────────────┴───────────────────────────────────┴─ validation

Every recipe config is loaded here, with the wiring overrides (input paths from upstream stages,
outputs into the artifacts folder), so a typo anywhere fails before the first stage runs. A
stage's settings (hashed for the cache) are its resolved recipe config plus its section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest
from tandem.common.packages import installed_package_dir
from tandem.common.recipe_config import dump_config, load_config
from tandem.pipeline.config import PipelineConfig
from tandem.pipeline.dag import Stage, StageContext, StageResult, stage_dir


def package_file(package: str, path: str) -> Path:
    """A data file inside an installed wheel, found without importing the package."""
    folder = installed_package_dir(package)
    if folder is None:
        raise FileNotFoundError(f"package {package} is not installed (see README: make install-all)")
    found = folder / path
    if not found.is_file():
        raise FileNotFoundError(f"{found} does not exist in package {package}")
    return found


def entry_files(artifacts: Path, names: list[str]) -> list[Path]:
    manifest = Manifest(artifacts)
    return [artifacts / f.path for name in names for f in manifest.entry(name).files]


def curate_stage(cfg: PipelineConfig) -> Stage:
    from tandem.training.curation.config import CurationConfig, InputSpec

    section, out = cfg.stages.curate, stage_dir(cfg.artifacts_dir, "curate")
    config = load_config(CurationConfig, section.config, [*section.overrides, f"out_dir={out}", "progress=false"])
    inputs = [InputSpec(path=p) for p in section.inputs]
    inputs += [InputSpec(path=package_file(i.package, i.path), format=i.format, limit=i.limit) for i in section.package_inputs]
    if inputs:
        config = config.model_copy(update={"inputs": inputs})

    def run(ctx: StageContext) -> StageResult:
        from tandem.training.curation.pipeline import curate

        summary = curate(config)
        return StageResult([out / "curated.jsonl", out / "stats.json"],
                           {k: summary[k] for k in ("records_read", "records_kept", "seconds")})

    return Stage("curate", (), dump_config(config), run, inputs=[i.path for i in config.inputs])


def distill_stage(cfg: PipelineConfig) -> Stage:
    from tandem.training.distill.config import DistillConfig

    section, out = cfg.stages.distill, stage_dir(cfg.artifacts_dir, "distill")
    config = load_config(DistillConfig, section.config,
                         [*section.overrides, f"failures={section.failures}", f"out_dir={out}"])

    def run(ctx: StageContext) -> StageResult:
        import asyncio

        from tandem.training.distill.pipeline import distill

        stats = asyncio.run(distill(config))
        return StageResult([out / "sft.jsonl", out / "stats.json"],
                           {k: stats[k] for k in ("rows", "spent_tokens", "spent_usd")})

    return Stage("distill", (), dump_config(config), run, inputs=[config.failures])


def base_sft_stage(cfg: PipelineConfig) -> Stage:
    from tandem.training.base_recipe_config import BaseRecipeConfig

    section, out = cfg.stages.base_sft, stage_dir(cfg.artifacts_dir, "base_sft")
    deps = ["curate"] + (["distill"] if cfg.stages.distill.enabled else [])
    train = ",".join(str(p) for p in [stage_dir(cfg.artifacts_dir, "curate") / "curated.jsonl"]
                     + ([stage_dir(cfg.artifacts_dir, "distill") / "sft.jsonl"] if "distill" in deps else []))
    recipe = load_config(BaseRecipeConfig, section.config,
                         [*section.overrides, f"data.train=[{train}]", f"sft.output_dir={out}", "run_native=true"])

    def run(ctx: StageContext) -> StageResult:
        from tandem.training.base_recipe import run_base_recipe

        result = run_base_recipe(recipe)
        outputs = [out / "adapter", out / "axolotl.yaml"] + ([result.lora_gguf] if result.lora_gguf else [])
        figures = {k: result.metrics.get(k) for k in ("train_loss", "eval_loss", "global_step", "train_runtime_s")}
        return StageResult(outputs, figures)

    return Stage("base_sft", tuple(deps), dump_config(recipe), run)


def merge_stage(cfg: PipelineConfig) -> Stage:
    base_model = load_base_recipe(cfg).sft.base_model
    out = stage_dir(cfg.artifacts_dir, "merge")
    adapter = stage_dir(cfg.artifacts_dir, "base_sft") / "adapter"

    def run(ctx: StageContext) -> StageResult:
        from tandem.training.merge import merge_adapter

        merge_adapter(base_model, adapter, out, ctx.upstream["base_sft"]["trained_on"])
        return StageResult([out])

    return Stage("merge", ("base_sft",), {"base_model": base_model, "adapter": str(adapter)}, run)


def load_base_recipe(cfg: PipelineConfig) -> Any:
    from tandem.training.base_recipe_config import BaseRecipeConfig

    section = cfg.stages.base_sft
    return load_config(BaseRecipeConfig, section.config, [*section.overrides, "data.train=[unused]"])


def compress_stage(cfg: PipelineConfig) -> Stage:
    from tandem.compression.config import CompressConfig

    section, out = cfg.stages.compress, stage_dir(cfg.artifacts_dir, "compress")
    wiring = [f"artifacts_dir={cfg.artifacts_dir}", f"work_dir={out}", "publish.enabled=true"]
    if cfg.stages.merge.enabled:
        wiring.append(f"source.model={stage_dir(cfg.artifacts_dir, 'merge')}")
    config = load_config(CompressConfig, section.config, [*section.overrides, *wiring])

    def run(ctx: StageContext) -> StageResult:
        from tandem.compression.recipe import CompressionRecipe

        recipe = CompressionRecipe(config)
        recipe.setup()
        recipe.run()
        paths = recipe.save()
        final = recipe.results[-1]
        return StageResult([paths["base"], paths["json"], paths["png"]],
                           {"size_bytes": final.size_bytes, "perplexity": final.perplexity,
                            "arc_easy_accuracy": final.arc_easy_accuracy,
                            "size_bytes_by_stage": {r.name: r.size_bytes for r in recipe.results}})

    return Stage("compress", ("merge",) if cfg.stages.merge.enabled else (), dump_config(config), run)


def served_base(cfg: PipelineConfig) -> Path:
    from tandem.compression.config import CompressConfig

    section = cfg.stages.compress
    config = load_config(CompressConfig, section.config, [*section.overrides, f"artifacts_dir={cfg.artifacts_dir}"])
    path = cfg.artifacts_dir / config.publish.path
    return path.with_suffix("") if path.suffix == ".zst" and not config.zstd.enabled else path


