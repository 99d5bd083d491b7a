"""Embeddings of training texts, cached by encoder file hash and text, so re-running the recipe
(new templates, another head) embeds only what is new. Lives in Tandem's cache folder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tandem.common.manifest import sha256_file
from tandem.common.model_files import cache_dir


def _text_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def cached_embeddings(model_path: Path, max_tokens: int, batch_size: int, texts: list[str],
                      compute: Callable[[list[int]], np.ndarray], truncation: str = "head",
                      adapter: Path | None = None) -> np.ndarray:
    """Embeddings of `texts`; `compute(indices)` embeds the ones not cached yet. The batch size is
    part of the key: int8 dynamic quantization makes an embedding depend on its batch; so is the
    truncation (which tokens of a long text are embedded)."""
    cut = "" if truncation == "head" else f"-{truncation}"
    lora = f"-lora{sha256_file(adapter)[:12]}" if adapter is not None else ""  # a fine-tuned encoder
    key = f"{sha256_file(model_path)[:16]}{lora}-{max_tokens}{cut}-b{batch_size}"
    path = cache_dir() / "router-embeddings" / f"{key}.npz"
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            known = dict(zip(data["hashes"].tolist(), data["vectors"]))
    hashes = [_text_hash(t) for t in texts]
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in known}.values())
    if todo:
        for i, vector in zip(todo, compute(todo)):
            known[hashes[i]] = vector
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, hashes=np.array(list(known)), vectors=np.stack(list(known.values())))
        tmp.replace(path)
    return np.stack([known[h] for h in hashes])
