"""transformers and llama.cpp score the same token ids alike; calibration features behave."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.common.answer_confidence import fit_choice_temperature, pad_logits, sequence_features


def test_hf_and_gguf_scorers_agree_on_the_same_tokens(tiny_llama_dir, tmp_path):
    from tandem.compression import hf_io
    from tandem.compression.gguf_export import convert_hf
    from tandem.compression.scoring import GGUFScorer, HFScorer, perplexity

    gguf = convert_hf(tiny_llama_dir, tmp_path / "tiny-f32.gguf", outtype="f32")
    hf, gg = HFScorer(hf_io.load_model(tiny_llama_dir)), GGUFScorer(gguf, n_ctx=128, threads=1)
    context, continuations = [1, 450, 2045, 30], [[905, 17], [378, 25359, 314, 260], [28]]
    for a, b in zip(hf.continuation_logprobs(context, continuations), gg.continuation_logprobs(context, continuations)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-3)
    windows = [[int(t) for t in np.random.default_rng(i).integers(0, 40000, 24)] for i in range(3)]
    assert perplexity(hf, windows, 1) == pytest.approx(perplexity(gg, windows, 1), rel=1e-3)
    gg.close()


def test_temperature_fit_lowers_ece_of_overconfident_scores():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 400)
    logits = rng.normal(0, 1, (400, 4))
    logits[np.arange(400), gold] += 1.0  # right more often than chance
    logits *= 6.0  # and far too sure of itself
    result = fit_choice_temperature(logits[:200], gold[:200], logits[200:], gold[200:])
    assert result.temperature > 2.0
    assert result.ece_after < result.ece_before / 2


def test_padding_keeps_ragged_option_counts_out_of_the_softmax():
    padded = pad_logits([np.array([0.0, 1.0, 2.0]), np.array([5.0, 0.0])])
    assert padded.shape == (2, 3)
    assert padded[1].argmax() == 0 and padded[1, 2] < -1e8


def test_sequence_features_summarise_token_logprobs():
    features = sequence_features([-0.1, -3.0, -0.5])
    assert features["min_logprob"] == -3.0 and features["n_tokens"] == 3.0
    assert features["mean_logprob"] == pytest.approx(-1.2)
    assert features["frac_below_minus_2"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        sequence_features([])


def test_awq_group_size_fits_every_layer_width():
    from tandem.compression.awq import group_size_for

    assert group_size_for([128, 256], 128) == 128
    assert group_size_for([576, 1536], 128) == 64  # SmolLM2-135M
    with pytest.raises(ValueError, match="no group size"):
        group_size_for([100], 128)
