"""The exported ONNX encoder agrees with the torch MiniLM it came from (cosine >= 0.99)."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.services.routing.encoder import OnnxEncoder
from tandem.training.routing.dataset import load_handwritten
from tandem.training.routing.export import export_encoder, torch_embeddings


@pytest.fixture(scope="module")
def texts(trained_router) -> list[str]:
    return [ex.text for ex in load_handwritten(trained_router.config.handwritten)[::4]]


@pytest.fixture(scope="module")
def reference(texts, trained_router) -> np.ndarray:
    return torch_embeddings(texts, trained_router.config.encoder.max_tokens)


def _cosines(encoder: OnnxEncoder, texts: list[str], reference: np.ndarray, batch_size: int = 8) -> np.ndarray:
    embeddings = encoder.encode(texts, batch_size=batch_size)  # padded batches: the mask must keep padding out
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    return np.sum(embeddings * reference, axis=1)


def test_fp32_export_matches_torch(tmp_path, texts, reference, trained_router):
    model, tokenizer = export_encoder(tmp_path, quantize=False)
    cosines = _cosines(OnnxEncoder(model, tokenizer, trained_router.config.encoder.max_tokens), texts, reference)
    assert cosines.min() >= 0.9999


def test_int8_served_encoder_stays_within_cosine_0_99(texts, reference, trained_router):
    out = trained_router.config.output_dir
    encoder = OnnxEncoder(out / "encoder.onnx", out / "tokenizer.json", trained_router.config.encoder.max_tokens)
    # One text per call, as the router serves it: int8 dynamic quantization scales activations per
    # call, so in a padded batch of 8 a long neighbour shifts a text's scale (min cosine 0.9899 seen).
    cosines = _cosines(encoder, texts, reference, batch_size=1)
    assert cosines.min() >= 0.99, sorted(cosines)[:5]
    assert (out / "encoder.onnx").stat().st_size < 25e6
