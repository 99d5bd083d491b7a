"""Where a recipe's base model comes from: an HF folder, a GGUF file, or the embedded default.

GGUF inputs are dequantized once into Tandem's cache (keyed by the file's sha256), so every
recipe trains on HF weights and knows the sha256 of the GGUF it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tandem.common.manifest import sha256_file
from tandem.common.model_files import cache_dir, resolve_model_path
from tandem.compression.gguf_to_hf import converted_sha256, dequantize_gguf_to_hf


@dataclass(frozen=True)
class ResolvedBase:
    hf_dir: Path
    gguf_sha256: str | None
    """sha256 of the GGUF the weights came from (what serving checks adapters against), if any."""


def resolve_base(base_model: str) -> ResolvedBase:
    """An HF folder for `base_model` ('embedded', a .gguf path, or an HF folder)."""
    path = Path(base_model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"base model folder {path} has no config.json")
        return ResolvedBase(path, converted_sha256(path))
    gguf = resolve_model_path(base_model)
    digest = sha256_file(gguf)
    hf_dir = dequantize_gguf_to_hf(gguf, cache_dir() / "hf-from-gguf" / digest[:16])
    return ResolvedBase(hf_dir, digest)
