"""Recovery fine-tuning: a short LoRA on the pruned model, merged without losing its sparsity.

A merged LoRA update `B @ A` is dense, so merging it would fill the pruned zeros back in. We
record the zero mask of every pruned weight before training, merge, multiply the mask back in
and check the sparsity is exactly what pruning left.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from tandem.compression.config import RecoveryConfig
from tandem.compression.hf_io import prunable_weights, sparsity


class SparsityLostError(RuntimeError):
    """The merged model is less sparse than the pruned one."""


def sparsity_masks(model) -> dict[str, torch.Tensor]:
    return {name: w != 0 for name, w in prunable_weights(model).items()}


def apply_masks(model, masks: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, weight in prunable_weights(model).items():
            if name in masks:
                weight.mul_(masks[name].to(weight.dtype))


def recover(model, windows: list[list[int]], config: RecoveryConfig, seed: int = 0):
    """Train a LoRA for `config.steps` steps on `windows`, merge it, re-apply the mask.

    Returns (merged model, figures)."""
    from peft import LoraConfig, get_peft_model

    masks = sparsity_masks(model)
    before = sparsity(model)["sparsity_linear"]
    generator = torch.Generator().manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                                                  target_modules=config.target_modules, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad],
                                  lr=config.learning_rate)
    data = torch.tensor(windows)
    peft_model.train()
    losses = []
    for _ in (bar := tqdm(range(config.steps), desc="recovery LoRA", leave=False)):
        batch = data[torch.randint(len(data), (config.batch_size,), generator=generator)]
        loss = peft_model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    merged = peft_model.merge_and_unload().eval()
    apply_masks(merged, masks)
    after = sparsity(merged)["sparsity_linear"]
    if after < before - 1e-9:
        raise SparsityLostError(f"recovery left sparsity {after:.4f}, pruning gave {before:.4f}")
    return merged, {"train_loss_first": losses[0], "train_loss_last": losses[-1],
                    "sparsity_before_merge": before, "sparsity_after_merge": after}
