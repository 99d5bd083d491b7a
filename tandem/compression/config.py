"""The `tandem compress` recipe config: one section per stage, each can be switched off.

Loaded with `tandem.common.recipe_config.load_config(CompressConfig, path, overrides)`, so any
value can be overridden as `key=value` (e.g. `prune.structure=unstructured gguf.quant_type=Q4_K_M`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LLAMA_CPP_QUANT_TYPES = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0",
                         "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "IQ2_XXS", "IQ2_XS", "IQ2_S",
                         "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "F16", "BF16"]
# i-quants below 3 bits are unusable without an importance matrix (llama-quantize refuses them).
NEEDS_IMATRIX = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS"}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(Section):
    model: str = Field("embedded", description="'embedded' (SmolLM2-135M GGUF), a .gguf file (dequantized "
                       "to HF weights first), or an HF checkpoint folder")


class DataConfig(Section):
    calibration: str = Field("builtin:sciq", description="text for pruning/AWQ/recovery: builtin:sciq, "
                             "builtin:boolq, or a .txt / .jsonl (field 'text') file")
    heldout: str = Field("builtin:boolq", description="held-out text for perplexity (never calibrated on)")
    calibration_samples: int = Field(64, ge=1, description="calibration sequences")
    seq_len: int = Field(256, ge=8, description="tokens per calibration / perplexity window")
    heldout_tokens: int = Field(16384, ge=16, description="held-out tokens scored at every stage")

    @model_validator(mode="after")
    def _disjoint(self) -> DataConfig:
        if self.calibration == self.heldout:
            raise ValueError("data.calibration and data.heldout must differ: perplexity on calibration text "
                             "flatters every stage")
        return self


class PruneConfig(Section):
    enabled: bool = True
    method: Literal["sparsegpt", "wanda"] = "sparsegpt"
    structure: Literal["unstructured", "2:4"] = "2:4"
    sparsity: float = Field(0.5, gt=0.0, lt=1.0, description="fraction of zeros (2:4 implies 0.5)")
    targets: list[str] = Field(default_factory=lambda: ["Linear"])
    ignore: list[str] = Field(default_factory=lambda: ["lm_head"])

    @model_validator(mode="after")
    def _two_four_is_half(self) -> PruneConfig:
        if self.structure == "2:4" and self.sparsity != 0.5:
            raise ValueError("prune.structure=2:4 means exactly 0.5 sparsity: set prune.sparsity=0.5 "
                             "or prune.structure=unstructured")
        return self


class RecoveryConfig(Section):
    enabled: bool = True
    steps: int = Field(60, ge=1)
    batch_size: int = Field(4, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    rank: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])


class AWQConfig(Section):
    enabled: bool = True
    scheme: str = Field("W4A16_ASYM", description="compressed-tensors scheme of the packed vLLM checkpoint "
                        "(and the quantizer AWQ's scale search simulates)")
    group_size: int | Literal["auto"] = Field("auto", description="weight group size; auto = the scheme's "
                                              "(128) or the largest of 64/32 that divides every layer")
    n_grid: int = Field(20, ge=3, description="grid points of AWQ's scale search")
    duo_scaling: bool = True
    ignore: list[str] = Field(default_factory=lambda: ["lm_head"])
    export_packed: bool = Field(True, description="also save the packed checkpoint vLLM loads")


class GGUFConfig(Section):
    quant_type: str = Field("Q5_K_M", description="any llama.cpp type: " + ", ".join(LLAMA_CPP_QUANT_TYPES))
    outtype: Literal["f16", "bf16", "f32"] = "f16"
    imatrix: Literal["auto", "required", "skip"] = Field(
        "auto", description="importance matrix from llama-imatrix: auto = when the tool is built, required = fail without it")
    build_tools: bool = Field(False, description="build llama-quantize/llama-imatrix with cmake if missing")
    imatrix_chunks: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _known_type(self) -> GGUFConfig:
        if self.quant_type.upper() not in LLAMA_CPP_QUANT_TYPES:
            raise ValueError(f"gguf.quant_type {self.quant_type!r} is not one of {LLAMA_CPP_QUANT_TYPES}")
        self.quant_type = self.quant_type.upper()
        if self.quant_type in NEEDS_IMATRIX and self.imatrix == "skip":
            raise ValueError(f"{self.quant_type} needs an importance matrix: set gguf.imatrix=required or auto")
        return self


class ZstdConfig(Section):
    enabled: bool = True
    level: int = Field(19, ge=1, le=22)
    threads: int = Field(0, ge=0, description="0 = one per CPU core")
    long_distance: bool = True


class EvalConfig(Section):
    arc_items: int = Field(200, ge=1, description="ARC-Easy test items scored at every stage")
    calibration_dev_items: int = Field(200, ge=2, description="ARC-Easy dev items for the temperature fit")


class CalibrationConfig(Section):
    enabled: bool = True
    n_bins: int = Field(10, ge=2)


class PublishConfig(Section):
    enabled: bool = Field(True, description="put the final GGUF where `tandem up` serves it")
    path: str = Field("base/model.gguf.zst", description="relative to artifacts_dir")
    name: str = Field("base", description="manifest entry name")


class CompressConfig(Section):
    run_name: str = Field("smollm2-135m", pattern=r"^[A-Za-z0-9._-]+$")
    artifacts_dir: Path = Path("artifacts")
    work_dir: Path | None = Field(None, description="stage outputs; default <artifacts_dir>/compression/<run>")
    seed: int = 0
    threads: int = Field(0, ge=0, description="torch / llama.cpp threads; 0 = all cores")
    source: SourceConfig = SourceConfig()
    data: DataConfig = DataConfig()
    prune: PruneConfig = PruneConfig()
    recovery: RecoveryConfig = RecoveryConfig()
    awq: AWQConfig = AWQConfig()
    gguf: GGUFConfig = GGUFConfig()
    zstd: ZstdConfig = ZstdConfig()
    eval: EvalConfig = EvalConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    publish: PublishConfig = PublishConfig()

    @model_validator(mode="after")
    def _recovery_needs_pruning(self) -> CompressConfig:
        if self.recovery.enabled and not self.prune.enabled:
            raise ValueError("recovery fine-tuning restores a pruned model: enable prune or set "
                             "recovery.enabled=false")
        return self

    @property
    def stage_dir(self) -> Path:
        return self.work_dir or self.artifacts_dir / "compression" / self.run_name
