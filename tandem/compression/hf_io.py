"""Loading and saving the HF checkpoints that the HF stages pass along, and measuring them.

llm-compressor leaves quantization parameters (`weight_scale`, ...) and wrappers on a model it
has calibrated; `save_dense` writes only the model's own tensors, so the next stage (and
`convert_hf_to_gguf.py`) reads a plain checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

WEIGHT_SUFFIXES = (".safetensors", ".bin")


def load_model(path: str | Path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def load_tokenizer(path: str | Path):
    return AutoTokenizer.from_pretrained(path)


def own_keys(path: str | Path) -> set[str]:
    """The state-dict keys of a freshly built model of `path`'s architecture."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return set(model.state_dict())


def save_dense(model, tokenizer, keys: set[str], like: str | Path, out_dir: str | Path) -> Path:
    """Save `model`'s tensors named in `keys` as a plain checkpoint of `like`'s architecture."""
    out_dir = Path(out_dir)
    config = AutoConfig.from_pretrained(like)
    with torch.device("meta"):
        clean = AutoModelForCausalLM.from_config(config)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k in keys}
    clean.load_state_dict(state, strict=False, assign=True)
    clean.tie_weights()
    missing = [k for k, v in clean.state_dict().items() if v.is_meta]
    if missing:
        raise RuntimeError(f"cannot save a dense checkpoint: tensors {missing[:5]} were not found")
    clean.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def prunable_weights(model, ignore: tuple[str, ...] = ("lm_head",)) -> dict[str, torch.Tensor]:
    """The 2-D Linear weights inside the decoder layers (what pruning targets)."""
    return {name: module.weight for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and not any(i in name for i in ignore)}


def sparsity(model) -> dict[str, float]:
    """Zero fraction of the prunable Linear weights and of all parameters."""
    linear = prunable_weights(model)
    lin_zero = sum(int((w == 0).sum()) for w in linear.values())
    lin_total = sum(w.numel() for w in linear.values())
    params = {id(p): p for p in model.parameters()}.values()
    all_zero = sum(int((p == 0).sum()) for p in params)
    return {"sparsity_linear": lin_zero / max(lin_total, 1),
            "sparsity_all": all_zero / max(sum(p.numel() for p in params), 1)}


def n_params(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def weights_size(path: str | Path) -> int:
    """Bytes of the weight files in a checkpoint folder."""
    return sum(f.stat().st_size for f in Path(path).iterdir() if f.suffix in WEIGHT_SUFFIXES)
