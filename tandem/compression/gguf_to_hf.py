"""HF-format weights from a GGUF file, so peft/transformers can fine-tune a model shipped as GGUF.

transformers dequantizes GGUF tensors to torch (`from_pretrained(dir, gguf_file=name)`); the
result refuses `save_pretrained` ("quantized with gguf and is not serializable") until the GGUF
quantizer and `config.quantization_config` are dropped, which is safe: the tensors are plain
float by then. The weights keep the 4-bit source's loss. The conversion is cached: `out_dir`
remembers the sha256 of the GGUF it was made from and is reused when that matches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tandem.common.manifest import sha256_file, write_json

SOURCE_FILE = "tandem_gguf_source.json"
log = logging.getLogger(__name__)


class GGUFConversionError(Exception):
    """A GGUF file could not be turned into HF weights."""


def converted_sha256(out_dir: str | Path) -> str | None:
    """The sha256 of the GGUF that `out_dir` was converted from, or None."""
    marker = Path(out_dir) / SOURCE_FILE
    if not marker.is_file():
        return None
    return json.loads(marker.read_text()).get("gguf_sha256")


def dequantize_gguf_to_hf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Write HF weights, config and tokenizer for `gguf_path` into `out_dir`; return `out_dir`."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if not gguf_path.is_file():
        raise GGUFConversionError(f"GGUF file {gguf_path} does not exist")
    digest = sha256_file(gguf_path)
    if converted_sha256(out_dir) == digest and (out_dir / "config.json").is_file():
        log.info("reusing HF conversion of %s in %s", gguf_path.name, out_dir)
        return out_dir

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s to HF weights in %s", gguf_path, out_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                     dtype=torch.float32)
    except (ValueError, KeyError, OSError) as exc:
        raise GGUFConversionError(f"transformers cannot read {gguf_path}: {exc}") from exc
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_json(out_dir / SOURCE_FILE, {"gguf_file": gguf_path.name, "gguf_sha256": digest})
    return out_dir
