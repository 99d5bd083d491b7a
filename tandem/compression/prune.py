"""Pruning through llm-compressor: SparseGPT or Wanda, unstructured or 2:4, in one shot.

2:4 (two zeros in every four consecutive weights) is the pattern sparse tensor cores speed up;
unstructured sparsity keeps more quality at the same ratio but no dense kernel runs faster on it.
llama.cpp stores zeros like any other value, so pruning alone does not shrink a GGUF (the
report shows what it does to zstd and to quality).
"""

from __future__ import annotations

from tandem.compression.config import PruneConfig

MASK_STRUCTURE = {"unstructured": "0:0", "2:4": "2:4"}


def pruning_modifier(config: PruneConfig):
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier

    cls = {"sparsegpt": SparseGPTModifier, "wanda": WandaPruningModifier}[config.method]
    return cls(sparsity=config.sparsity, mask_structure=MASK_STRUCTURE[config.structure],
               targets=config.targets, ignore=config.ignore)


def calibration_dataset(windows: list[list[int]]):
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})


def prune(model, tokenizer, windows: list[list[int]], config: PruneConfig) -> None:
    """Prune `model` in place (it must have been loaded from a folder: llm-compressor reads its config)."""
    from llmcompressor import oneshot

    oneshot(model=model, processor=tokenizer, dataset=calibration_dataset(windows),
            recipe=[pruning_modifier(config)], num_calibration_samples=len(windows),
            max_seq_length=max(len(w) for w in windows))
