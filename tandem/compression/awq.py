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


def group_size_for(in_features: list[int], preferred: int) -> int:
    """The largest of `preferred`, 64, 32 that divides every layer's input width.

    SmolLM2-135M is 576 wide: the presets' 128-column groups do not fit it, 64 do."""
    for size in (preferred, 64, 32):
        if all(n % size == 0 for n in in_features):
            return size
    raise ValueError(f"no group size in ({preferred}, 64, 32) divides the layer widths {sorted(set(in_features))}")


def awq_recipe(config: AWQConfig, in_features: list[int]) -> list:
    from compressed_tensors.quantization import preset_name_to_scheme
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier

    scheme = preset_name_to_scheme(config.scheme, ["Linear"])
    if scheme.weights is not None and scheme.weights.group_size:
        preferred = scheme.weights.group_size if config.group_size == "auto" else config.group_size
        scheme.weights.group_size = group_size_for(in_features, preferred)
    return [AWQModifier(n_grid=config.n_grid, duo_scaling=config.duo_scaling),
            QuantizationModifier(config_groups={"group_0": scheme}, ignore=config.ignore)]


def apply_awq(model, tokenizer, windows: list[list[int]], config: AWQConfig) -> None:
    """Smooth `model`'s weights in place and attach the quantization parameters."""
    import torch
    from llmcompressor import oneshot

    in_features = [m.in_features for name, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and not any(i in name for i in config.ignore)]
    with _no_pinning_without_cuda():
        oneshot(model=model, processor=tokenizer, dataset=calibration_dataset(windows),
                recipe=awq_recipe(config, in_features), num_calibration_samples=len(windows),
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
