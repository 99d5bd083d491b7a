"""Text embedders for the semantic cache: a small protocol and a registry.

`hashing`: character 3-gram counts hashed into 1,024 dimensions, L2-normalised: no model, no
artifacts, microseconds; near-duplicates (typos, spacing, punctuation) score close to 1, a
reworded question does not. `onnx`: the domain router's MiniLM ONNX encoder from the artifacts
(`router/encoder.onnx` + `router/tokenizer.json`): catches paraphrases, costs a few ms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    def embed(self, text: str) -> np.ndarray: ...


EmbedderFactory = Callable[..., Embedder]
EMBEDDERS: dict[str, EmbedderFactory] = {}


def register_embedder(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    def decorator(factory: EmbedderFactory) -> EmbedderFactory:
        EMBEDDERS[name] = factory
        return factory
    return decorator


def build_embedder(name: str, artifacts_dir: str | None = None) -> Embedder:
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder '{name}'; known: {', '.join(sorted(EMBEDDERS))}")
    return EMBEDDERS[name](artifacts_dir=artifacts_dir)


@register_embedder("hashing")
class HashingEmbedder:
    def __init__(self, dims: int = 1024, n: int = 3, **_: object):
        self.dims, self.n = dims, n

    def embed(self, text: str) -> np.ndarray:
        text = " ".join(text.lower().split())
        vector = np.zeros(self.dims, dtype=np.float32)
        for i in range(max(1, len(text) - self.n + 1)):
            gram = text[i:i + self.n].encode()
            vector[int.from_bytes(hashlib.blake2b(gram, digest_size=4).digest(), "little") % self.dims] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


@register_embedder("onnx")
class OnnxEmbedder:
    def __init__(self, artifacts_dir: str | None = None, **_: object):
        if not artifacts_dir:
            raise ValueError("the onnx embedder needs the artifacts folder holding router/encoder.onnx")
        from tandem.routing.encoder import OnnxEncoder
        root = Path(artifacts_dir) / "router"
        self.encoder = OnnxEncoder(root / "encoder.onnx", root / "tokenizer.json", max_tokens=128)

    def embed(self, text: str) -> np.ndarray:
        return self.encoder.encode([text])[0]
