"""The native LoRA SFT recipe: chat rows in, a peft adapter plus its training record out.

Lifecycle (torchtune-style, one readable function): resolve the base (GGUF -> HF, cached),
tokenize with loss on assistant turns only, wrap the model with peft LoRA, train with the
transformers Trainer (eval loss, early stopping, checkpoints and resume, tqdm progress), then
write into `output_dir`:

    adapter/            the peft adapter (best eval loss when eval rows are given)
    checkpoints/        Trainer checkpoints (resume with `resume: true`)
    config.json         the resolved SFTConfig
    metrics.json        losses, steps, token counts, throughput, dropped rows
    loss_curve.png      train and eval loss per step
    manifest.json       the adapter's files, their sha256, base sha256, config and metrics

The same function runs on one CPU, one GPU or under `accelerate launch` (FSDP/DDP): the Trainer
reads the distributed environment that the launcher sets up.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest, write_json
from tandem.common.recipe_config import dump_config
from tandem.training.base_model import resolve_base
from tandem.training.chat_data import IGNORE_INDEX, tokenize_rows
from tandem.training.loss_plot import plot_loss_curve
from tandem.training.packing import pack_rows
from tandem.training.sft_config import SFTConfig

log = logging.getLogger(__name__)


@dataclass
class SFTResult:
    output_dir: Path
    adapter_dir: Path
    base_hf_dir: Path
    base_gguf_sha256: str | None
    metrics: dict[str, Any]
    loss_curve: Path


def distributed_state():
    """accelerate's process state; CPU-only hosts (torchrun/gloo) count as multi-CPU when launched so."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _precision(config: SFTConfig) -> str:
    import torch

    if config.precision != "auto":
        return config.precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def _training_arguments(config: SFTConfig, precision: str, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(config.output_dir / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=has_eval,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="random" if config.shuffle else "sequential",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=config.gradient_checkpointing,
        use_liger_kernel=config.use_liger_kernel,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        report_to=config.report_to or "none",
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
    )


def _time_limit_callback(max_time_s: float):
    """Stops the Trainer once `max_time_s` of training have passed; the final evaluation and save
    still run (`should_evaluate`/`should_save`), so a cut-short run keeps its best adapter.
    `.stopped` says whether it fired."""
    import time

    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        stopped = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if time.monotonic() - self.started >= max_time_s:
                log.info("time limit (%.0f s) reached at step %d of %d", max_time_s, state.global_step, state.max_steps)
                self.stopped = True
                control.should_training_stop = True
                control.should_evaluate = control.should_save = True
            return control

    return TimeLimit()


def _collator(tokenizer, packing: bool):
    from transformers import DataCollatorForSeq2Seq, default_data_collator

    if packing:  # packed rows are all max_seq_len long: stack them
        return default_data_collator
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


def _dataset(rows: list[dict], tokenizer, config: SFTConfig) -> list[dict]:
    return pack_rows(rows, config.max_seq_len, tokenizer.pad_token_id) if config.packing else rows


def _load_model(hf_dir: Path, config: SFTConfig, precision: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=dtype,
                                                 attn_implementation=config.attn_implementation)
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=config.lora.target_modules, task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    if config.compile_layers:  # per layer, as torchtune does: one compiled graph serves every block
        for layer in model.get_base_model().model.layers:
            layer.compile()
    return model


def run_sft(config: SFTConfig, train_rows: list[dict], eval_rows: list[dict],
            trained_on: dict[str, Any] | None = None) -> SFTResult:
    """Train a LoRA adapter on chat rows; see the module docstring for what lands in output_dir.
    `trained_on` (dataset -> splits or ids, see tandem/common/provenance.py) goes into the
    adapter's manifest entry for the contamination guard."""
    from transformers import AutoTokenizer, EarlyStoppingCallback, Trainer, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    with distributed_state().main_process_first():  # one process converts a GGUF base, the others reuse it
        base = resolve_base(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base.hf_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = tokenize_rows(tokenizer, train_rows, config.max_seq_len)
    evals = tokenize_rows(tokenizer, eval_rows, config.max_seq_len)
    if not train.rows:
        raise ValueError(f"no trainable rows among {len(train_rows)} training rows: {dict(train.dropped)}")
    has_eval = bool(evals.rows)
    if not has_eval:
        log.warning("no eval rows: training without eval loss or early stopping")

    precision = _precision(config)
    model = _load_model(base.hf_dir, config, precision)
    callbacks = []
    if has_eval and config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    time_limit = _time_limit_callback(config.max_time_s) if config.max_time_s else None
    if time_limit:
        callbacks.append(time_limit)
    trainer = Trainer(model=model, args=_training_arguments(config, precision, has_eval),
                      train_dataset=_dataset(train.rows, tokenizer, config),
                      eval_dataset=_dataset(evals.rows, tokenizer, config) if has_eval else None,
                      data_collator=_collator(tokenizer, config.packing), callbacks=callbacks)
    checkpoint = get_last_checkpoint(str(out / "checkpoints")) if config.resume and \
        (out / "checkpoints").is_dir() else None
    if config.resume and checkpoint is None:
        log.info("resume requested but %s holds no checkpoint: starting fresh", out / "checkpoints")
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    final_eval = trainer.evaluate() if has_eval else {}

    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))  # collective under FSDP: gathers the adapter, rank 0 writes
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(adapter_dir)
    state = trainer.state
    stopped_by_time = bool(time_limit and time_limit.stopped)
    metrics = {
        "train_loss": train_output.training_loss,
        "eval_loss": final_eval.get("eval_loss"),
        "eval_perplexity": math.exp(final_eval["eval_loss"]) if "eval_loss" in final_eval else None,
        "best_eval_loss": state.best_metric,
        "best_checkpoint": state.best_model_checkpoint,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "epochs_done": state.epoch,
        "stopped_by_time": stopped_by_time,
        "early_stopped": bool(has_eval and state.global_step < state.max_steps and not stopped_by_time),
        "resumed_from": checkpoint,
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "input_tokens_seen": state.num_input_tokens_seen,
        "tokens_per_s": train_output.metrics.get("train_tokens_per_second")
        or (state.num_input_tokens_seen / train_output.metrics["train_runtime"]
            if train_output.metrics.get("train_runtime") else None),
        "train_rows": len(train.rows), "eval_rows": len(evals.rows),
        "train_tokens": train.tokens, "train_assistant_tokens": train.trained_tokens,
        "dropped_train_rows": dict(train.dropped), "dropped_eval_rows": dict(evals.dropped),
        "precision": precision,
        "world_size": trainer.args.world_size,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    loss_curve = out / "loss_curve.png"
    if trainer.is_world_process_zero():
        write_json(out / "config.json", dump_config(config) | {"resolved_base_hf_dir": str(base.hf_dir)})
        write_json(out / "metrics.json", metrics)
        write_json(out / "log_history.json", state.log_history)
        plot_loss_curve(state.log_history, loss_curve, f"LoRA SFT r={config.lora.r} on {Path(config.base_model).name}")
        Manifest(out).record("adapter", "adapter", sorted(p for p in adapter_dir.iterdir() if p.is_file()),
                             base_sha256=base.gguf_sha256, config=dump_config(config), metrics=metrics,
                             extra={"trained_on": trained_on or {}})
    return SFTResult(out, adapter_dir, base.hf_dir, base.gguf_sha256, metrics, loss_curve)
