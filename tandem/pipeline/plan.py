"""The pipeline's stages, in order, named here and only here (docs/PIPELINE.md, "The DAG")."""

from __future__ import annotations

from tandem.common.recipe_config import ConfigError
from tandem.pipeline.config import PipelineConfig
from tandem.pipeline.dag import Stage
from tandem.pipeline.serving_stages import (
    escalation_stage,
    labels_stage,
    modifiers_stage,
    router_stage,
    validation_stage,
)
from tandem.pipeline.stages import base_sft_stage, compress_stage, curate_stage, distill_stage, merge_stage


def stages(cfg: PipelineConfig) -> list[Stage]:
    """The enabled stages, every recipe config loaded and validated."""

    builders = {"curate": curate_stage, "distill": distill_stage, "base_sft": base_sft_stage,
                "merge": merge_stage, "compress": compress_stage, "modifiers": modifiers_stage,
                "router": router_stage, "escalation_labels": labels_stage, "escalation": escalation_stage,
                "validation": validation_stage}
    built = []
    for name, build in builders.items():
        if getattr(cfg.stages, name).enabled:
            try:
                built.append(build(cfg))
            except ConfigError as exc:
                raise ConfigError(f"stages.{name}: {exc}") from exc
    return built
