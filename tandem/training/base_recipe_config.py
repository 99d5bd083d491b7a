"""Config of the base fine-tuning recipe (plan phase 1A): one file drives both the Axolotl QLoRA
run on GPUs and the native runner (tandem.training.sft) on CPU or one GPU.

`sft` holds the hyperparameters both share (rank, alpha, dropout, targets, learning rate, epochs,
batch, sequence length, eval cadence, early stopping, packing, seed); `axolotl` holds what only
the Axolotl run needs (an HF model id, 4-bit loading, optimizer, attention kernels).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from tandem.common.recipe_config import RecipeModel
from tandem.training.sft_config import SFTConfig


class DataSettings(RecipeModel):
    train: list[Path] = Field(min_length=1, description=(
        "Chat JSONL files (`messages` per row), read in order: e.g. curation's curated.jsonl and "
        "distill's sft.jsonl. One path or a list. What they were made from (`trained_on` in the "
        "manifest beside each) is carried into the adapter's manifest entry."))
    eval: Path | None = Field(None, description="Held-out chat JSONL; if absent, val_fraction of train is held out.")
    val_fraction: float = Field(0.02, gt=0, lt=0.5, description="Share of train held out for eval loss.")
    max_rows: int | None = Field(None, ge=2, description="Use only the first N rows (short runs).")

    @field_validator("train", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str | Path) else value


class AxolotlSettings(RecipeModel):
    base_model: str = Field("meta-llama/Llama-3.1-8B", description="HF id or folder Axolotl loads.")
    load_in_4bit: bool = Field(True, description="QLoRA: NF4 base weights (bitsandbytes).")
    optimizer: str = Field("paged_adamw_8bit", description="Axolotl optimizer name.")
    flash_attention: bool = True
    gradient_checkpointing: bool = True
    liger_kernel: bool = Field(True, description="Liger fused RoPE/RMSNorm/SwiGLU/cross-entropy plugin.")
    dataset_prepared_path: str = "last_run_prepared"
    check_schema: bool = Field(True, description="Check the YAML with Axolotl's schema (where axolotl is installed).")
    python: Path | None = Field(None, description="Python of a virtualenv with axolotl, used to validate "
                                "the YAML (default: $TANDEM_AXOLOTL_PYTHON or .cache/axolotl-venv).")


class BaseRecipeConfig(RecipeModel):
    data: DataSettings
    sft: SFTConfig
    axolotl: AxolotlSettings = Field(default_factory=AxolotlSettings)
    export_gguf: bool = Field(True, description="Also write the adapter as a GGUF LoRA (llama.cpp).")
    run_native: bool = Field(True, description="Run the native runner after writing the Axolotl YAML.")
