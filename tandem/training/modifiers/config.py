"""The modifier recipe's config: which data trains a domain's LoRA, how (the shared SFT settings),
and which held-out benchmark decides whether it is served. One YAML per domain under
`configs/modifiers/`, overridable as `key=value` on the CLI (`sft.max_steps=20`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel
from tandem.training.base_recipe_config import AxolotlSettings
from tandem.training.modifiers.data import SOURCES
from tandem.training.sft_config import SFTConfig


class ModifierData(RecipeModel):
    train_sources: list[str] = Field(min_length=1, description=f"Builders to train on ({', '.join(SOURCES)}).")
    train_limit_per_source: int | None = Field(None, ge=1, description="Train rows per source (id-hash sample).")
    dev_limit_per_source: int | None = Field(None, ge=1, description="Dev rows per source for early stopping.")

    @model_validator(mode="after")
    def _known_sources(self) -> ModifierData:
        unknown = [s for s in self.train_sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown train_sources {unknown}; known: {', '.join(SOURCES)}")
        return self


class TaskSlice(RecipeModel):
    """One benchmark slice scored through `tandem eval` against the served model."""

    suite: str = Field(description="tandem eval suite id (humaneval, gsm8k, math500, bfcl, ...).")
    limit: int | None = Field(None, ge=1, description="Items (deterministic id-hash sample); null = all.")
    where: dict[str, list[Any]] = Field(default_factory=dict, description=(
        "Keep items whose meta[key] is one of the values, e.g. {level: ['Level 1']} or "
        "{category: ['live_simple']}: a slice where the base is off the floor."))
    max_tokens: int = Field(384, ge=1)


class ScaleSelection(RecipeModel):
    """The rule that picks the LoRA scale a modifier is served at, fixed in the config before any
    test slice is scored at a scale other than 1.0, and applied to dev rows only
    (`python -m tandem.training.modifiers.scale_select`). Candidates are tried largest first; the
    first that meets both conditions is chosen, so the choice is the largest scale that does:
      - no-fit dev items (requests offered tools none of which fits, `no_fit_source`, scored like BFCL
        irrelevance, 1 = no call): the modifier declines on at least (base's declines -
        max_decline_deficit) of them;
      - BFCL dev call items (dev ids, AST checker): the modifier's paired wins - losses against the
        base are at least min_call_margin.
    None meets both: no scale is chosen and the modifier is not re-evaluated."""

    candidates: list[float] = Field(min_length=1, description="Scales to try, each in (0, 4].")
    no_fit_source: Literal["pairs", "live_irrelevance"] = Field("pairs", description=(
        "The no-fit dev items: 'pairs' (the bfcl_no_fit and bfcl_no_fit_near dev pairs) or "
        "'live_irrelevance' (BFCL's live_irrelevance category: real user requests offered real APIs that "
        "cannot serve them; used for this selection only, never trained on or scored as a test slice)."))
    no_fit_limit: int | None = Field(None, ge=1, description=(
        "live_irrelevance items kept: the first N by sha256 of their id, among those whose question and "
        "functions fit in no_fit_max_chars of JSON (long API lists would overflow the served context)."))
    no_fit_max_chars: int = Field(4000, ge=100)
    max_decline_deficit: int = Field(ge=0, description="No-fit dev items the modifier may decline on fewer than the base.")
    min_call_margin: int = Field(ge=1, description="Wins - losses against the base on the BFCL dev call items.")

    @model_validator(mode="after")
    def _in_range(self) -> ScaleSelection:
        if any(not 0.0 < c <= 4.0 for c in self.candidates):
            raise ValueError(f"scale candidates must lie in (0, 4], got {self.candidates}")
        if (self.no_fit_source == "live_irrelevance") != (self.no_fit_limit is not None):
            raise ValueError("no_fit_limit goes with no_fit_source 'live_irrelevance', and only with it")
        return self


class ModifierServing(RecipeModel):
    lora_scale: float = Field(1.0, gt=0.0, le=4.0, description=(
        "Scale llama.cpp applies the LoRA at when serving and when measuring it (held-out loss, task "
        "slices): 1.0 as trained, below 1 part-way back to the base. Written into the manifest entry."))
    scale_selection: ScaleSelection | None = Field(None, description="How lora_scale was chosen (dev rows only).")
    tool_fit_min_similarity: float | None = Field(None, ge=-1.0, le=1.0, description=(
        "The router's tool-fit guard: a tool call whose function sits under this cosine from the request "
        "is answered by the base instead (services/router/tool_guard.py). Written into the manifest entry."))
    tool_args_min_grounding: float | None = Field(None, ge=0.0, le=1.0, description=(
        "The same guard's second check: a tool call that takes less than this share of its argument values "
        "from the request is answered by the base instead. Written into the manifest entry."))


class ModifierEvaluation(RecipeModel):
    heldout_sources: list[str] = Field(min_length=1, description=(
        "Builders whose test rows measure held-out loss (never trained on)."))
    heldout_limit: int | None = Field(64, ge=1, description="Held-out rows per source (id-hash sample).")
    heldout_max_seq_len: int = Field(2048, ge=16, description=(
        "Tokens per held-out row (longer rows are cut, the same cut for base and modifier)."))
    heldout_threads: int | None = Field(None, ge=1, description=(
        "llama.cpp threads for the held-out loss (default: llama.cpp's choice); 1 is fastest on a busy CPU, "
        "where spinning threads wait on each other at every barrier."))
    task: TaskSlice = Field(description="The domain's task metric: the slice that gates `servable`.")
    min_loss_drop: float = Field(0.01, ge=0, lt=1, description=(
        "Relative held-out loss drop a modifier needs to be served (0.01 = 1% of the base's loss); "
        "the paired interval of the drop must also exclude zero."))
    alpha: float = Field(0.05, gt=0, lt=1, description=(
        "One-sided significance of the gate's McNemar tests: the own task must improve at p < alpha, "
        "and no other slice may fall at p < alpha."))
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the reported confidence intervals.")

    @model_validator(mode="after")
    def _known_source(self) -> ModifierEvaluation:
        unknown = [s for s in self.heldout_sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown heldout_sources {unknown}; known: {', '.join(SOURCES)}")
        return self


class ModifierConfig(RecipeModel):
    """A domain modifier: LoRA SFT on the domain's train split, exported to GGUF, gated on held-out data."""

    domain: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Served as `tandem-<domain>`.")
    description: str = Field("", description="Which data trains it and which benchmark evaluates it.")
    base_model: str = Field("embedded", description="GGUF the adapter is served on ('embedded' = default).")
    artifacts_dir: Path = Field(Path("artifacts"), description="Where the adapter GGUF and manifest entry go.")
    work_dir: Path | None = Field(None, description="Checkpoints, reports; default build/modifiers/<domain>.")
    data: ModifierData
    evaluation: ModifierEvaluation
    sft: SFTConfig
    serving: ModifierServing = Field(default_factory=ModifierServing)
    axolotl: AxolotlSettings = Field(
        default_factory=lambda: AxolotlSettings(base_model="meta-llama/Llama-3.1-8B-Instruct"),
        description="The equivalent Axolotl QLoRA run for 8B-class bases (written beside the native run).")

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_domain(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("domain"):
            work = values.get("work_dir") or f"build/modifiers/{values['domain']}"
            values = {**values, "work_dir": work}
            sft = dict(values.get("sft") or {})
            sft.setdefault("output_dir", str(Path(work) / "sft"))
            sft.setdefault("base_model", values.get("base_model", "embedded"))
            values["sft"] = sft
        return values

    @model_validator(mode="after")
    def _same_base(self) -> ModifierConfig:
        if self.sft.base_model != self.base_model:
            raise ValueError(f"sft.base_model ({self.sft.base_model}) must be the served base_model "
                             f"({self.base_model}): an adapter only fits the weights it was trained on")
        return self

    @property
    def adapter_relpath(self) -> str:
        return f"modifiers/{self.domain}.gguf"
