"""Config of the base fine-tuning recipe (plan phase 1A): one file drives both the Axolotl QLoRA
run on GPUs and the native runner (tandem.training.sft) on CPU or one GPU.

`sft` holds the hyperparameters both share (rank, alpha, dropout, targets, learning rate, epochs,
batch, sequence length, eval cadence, early stopping, packing, seed); `axolotl` holds what only
the Axolotl run needs (an HF model id, 4-bit loading, optimizer, attention kernels).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from tandem.training.sft_config import SFTConfig


class DataSettings(BaseModel):
    train: Path = Field(description="Chat JSONL (`messages` per row), e.g. the curation step's curated.jsonl.")
    eval: Path | None = Field(None, description="Held-out chat JSONL; if absent, val_fraction of train is held out.")
    val_fraction: float = Field(0.02, gt=0, lt=0.5, description="Share of train held out for eval loss.")
    max_rows: int | None = Field(None, ge=2, description="Use only the first N rows (short runs).")


class AxolotlSettings(BaseModel):
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


class BaseRecipeConfig(BaseModel):
    data: DataSettings
    sft: SFTConfig
    axolotl: AxolotlSettings = Field(default_factory=AxolotlSettings)
    export_gguf: bool = Field(True, description="Also write the adapter as a GGUF LoRA (llama.cpp).")
    run_native: bool = Field(True, description="Run the native runner after writing the Axolotl YAML.")
