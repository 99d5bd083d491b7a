"""A peft LoRA adapter as a GGUF LoRA that llama.cpp (and so the modifier workers) can load.

Runs llama.cpp's own `convert_lora_to_gguf.py` from the llama-cpp-python sources that
`tandem.common.model_files` unpacks once into the cache. The base directory needs only the HF
`config.json` (and tokenizer files) of the model the adapter was trained on.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from tandem.common.model_files import llama_cpp_script, llama_cpp_script_env

log = logging.getLogger(__name__)


class LoraExportError(Exception):
    """The adapter could not be converted to GGUF."""


def export_lora_gguf(adapter_dir: str | Path, base_hf_dir: str | Path, out_path: str | Path,
                     outtype: str = "f16") -> Path:
    """Convert the peft adapter in `adapter_dir` to a GGUF LoRA at `out_path`; return `out_path`."""
    adapter_dir, base_hf_dir, out_path = Path(adapter_dir), Path(base_hf_dir), Path(out_path)
    missing = [str(p) for p in (adapter_dir / "adapter_config.json", base_hf_dir / "config.json")
               if not p.is_file()]
    if missing:
        raise LoraExportError(f"cannot export LoRA: missing {', '.join(missing)}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    command = llama_cpp_script("convert_lora_to_gguf.py") + [
        "--base", str(base_hf_dir), "--outtype", outtype, "--outfile", str(out_path), str(adapter_dir)]
    log.info("converting LoRA %s to %s", adapter_dir, out_path)
    proc = subprocess.run(command, env=llama_cpp_script_env(), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0 or not out_path.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise LoraExportError(
            f"convert_lora_to_gguf.py failed (exit {proc.returncode}) for adapter {adapter_dir} "
            f"on base {base_hf_dir}:\n{tail}")
    return out_path
