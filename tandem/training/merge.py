"""Merge a LoRA adapter into its base: the fine-tuned base that compression and serving start from.

peft's `merge_and_unload` folds W + (alpha/r)·BA into each target weight; the result is a plain
HF checkpoint (safetensors + tokenizer), which `tandem compress` takes as `source.model`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tandem.common.manifest import Manifest
from tandem.training.base_model import resolve_base


def merge_adapter(base_model: str, adapter_dir: Path, out: Path,
                  trained_on: dict | None = None) -> Path:
    """Write base + adapter merged into `out` (an HF folder) and record it in `out`'s manifest."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_base(base_model)
    model = AutoModelForCausalLM.from_pretrained(base.hf_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(adapter_dir if (adapter_dir / "tokenizer.json").is_file()
                                  else base.hf_dir).save_pretrained(out)
    (out / "merge.json").write_text(json.dumps({"base_model": base_model, "base_hf_dir": str(base.hf_dir),
                                                "base_gguf_sha256": base.gguf_sha256,
                                                "adapter_dir": str(adapter_dir)}, indent=2))
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name not in ("manifest.json", ".manifest.lock"))
    Manifest(out).record("merged-base", "base", files, base_sha256=base.gguf_sha256,
                         config={"base_model": base_model, "adapter_dir": str(adapter_dir)}, servable=False,
                         extra={"trained_on": trained_on or {}})
    return out
