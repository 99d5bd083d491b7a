"""The native LoRA SFT recipe's config: one pydantic model, loaded from YAML plus `key=value`
overrides by `tandem.common.recipe_config.load_config`, validated before any model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel

LLAMA_LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraSettings(RecipeModel):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: list(LLAMA_LINEAR_MODULES),
        description="Module names to adapt, or 'all-linear' (peft picks every linear layer but the head).")


class SFTConfig(RecipeModel):
    """Supervised fine-tuning of a LoRA adapter on chat rows (`{"messages": [...]}`)."""

    base_model: str = Field(
        "embedded", description="HF model folder, a .gguf file (dequantized once, cached by sha256) or "
        "'embedded' for the embedded default GGUF.")
    output_dir: Path = Field(description="Where the adapter, checkpoints, config, metrics and plot go.")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = Field("cosine", description="transformers scheduler name (linear, cosine, constant...).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_steps: int = Field(-1, description="Optimizer steps; -1 trains for `epochs` instead.")
    epochs: float = Field(1.0, gt=0)
    max_time_s: float | None = Field(
        None, gt=0, description="Stop training after this many seconds (the step in flight finishes, then the "
        "last evaluation and checkpoint run): bounds a run on a slow or shared machine; null: no limit.")
    batch_size: int = Field(4, ge=1, description="Rows per device per step.")
    grad_accum: int = Field(1, ge=1)
    max_seq_len: int = Field(1024, ge=16, description="Rows are truncated to this many tokens.")
    eval_steps: int = Field(50, ge=1, description="Evaluate (and checkpoint) every this many steps.")
    early_stopping_patience: int | None = Field(
        3, ge=1, description="Stop after this many evaluations without a lower eval loss; null disables.")
    logging_steps: int = Field(10, ge=1)
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept (the best is always kept).")
    seed: int = 42
    shuffle: bool = Field(True, description="Shuffle training rows each epoch (false: file order).")
    packing: bool = Field(False, description="Pack rows best-fit into max_seq_len-token rows with per-example "
                          "position ids (attention stays within each example); batch_size counts packed rows.")
    resume: bool = Field(False, description="Continue from the newest checkpoint in output_dir/checkpoints.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on a GPU that supports it, else fp32.")
    gradient_checkpointing: bool = False
    attn_implementation: str = Field("sdpa", description="transformers attention backend (sdpa, eager, ...).")
    use_liger_kernel: bool = Field(False, description="Liger fused kernels (GPU; needs liger-kernel).")
    compile_layers: bool = Field(False, description="torch.compile each decoder layer (GPU; static shapes "
                                 "from packing avoid recompiles).")
    report_to: list[str] = Field(default_factory=list, description="transformers report_to (tensorboard...).")

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> SFTConfig:
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be a positive number of steps, or -1 to train for `epochs`")
        return self
