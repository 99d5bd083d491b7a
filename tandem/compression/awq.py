"""AWQ through llm-compressor: activation-aware scales folded into the float weights.

`AWQModifier` searches per-channel scales that minimise the output error of the layers under
the quantizer of `QuantizationModifier` (W4A16 by default), then folds them into the weights:
the model stays float and computes the same function. Those smoothed float weights are what
we convert to GGUF (llama.cpp quantizes them with its own types). The same calibrated model,
packed by compressed-tensors, is the checkpoint vLLM loads (`export_packed`).

llm-compressor 0.14 pins the activation cache to page-locked memory before its scale search
(`IntermediatesCache.pin_memory`), which raises "Cannot access accelerator device when none is
available" on a CPU-only torch. Pinning only speeds up host-to-GPU copies, so on a machine
without CUDA we skip it for the duration of the call (`_no_pinning_without_cuda`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tandem.compression.config import AWQConfig
from tandem.compression.prune import calibration_dataset


@contextlib.contextmanager
def _no_pinning_without_cuda():
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if torch.cuda.is_available():
        yield
        return
    original = IntermediatesCache.pin_memory
    IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        IntermediatesCache.pin_memory = original


def awq_recipe(config: AWQConfig) -> list:
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier

    return [AWQModifier(n_grid=config.n_grid, duo_scaling=config.duo_scaling),
            QuantizationModifier(scheme=config.scheme, targets=["Linear"], ignore=config.ignore)]


def apply_awq(model, tokenizer, windows: list[list[int]], config: AWQConfig) -> None:
    """Smooth `model`'s weights in place and attach the quantization parameters."""
    from llmcompressor import oneshot

    with _no_pinning_without_cuda():
        oneshot(model=model, processor=tokenizer, dataset=calibration_dataset(windows),
                recipe=awq_recipe(config), num_calibration_samples=len(windows),
                max_seq_length=max(len(w) for w in windows))


def save_packed(model, tokenizer, out_dir: str | Path) -> Path:
    """The compressed-tensors checkpoint (int4 packed + scales) vLLM serves. Packs in place:
    save the float weights first."""
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


def load_packed(path: str | Path):
    """Load a packed checkpoint back into float weights (dequantized) for scoring."""
    import torch
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    return AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, quantization_config=CompressedTensorsConfig(run_compressed=False))
