"""The tool-fit model's recipe: its threshold keeps the registered share of fitting calls, its file
round-trips, and it trains on no request of the gate's BFCL slices (irrelevance, live) or of the dev
live_irrelevance items. (BFCL repeats some questions across its simple and multiple categories, so
a few train requests also appear under dev and test ids of those categories, which no gate reads.)"""

from __future__ import annotations

import numpy as np
import pytest

from tandem.training.modifiers.tool_fit_model import FitModel, threshold_for_recall, training_pairs


def test_the_threshold_is_the_largest_that_keeps_the_recall():
    scores = np.arange(1, 11) / 10  # 0.1 ... 1.0
    t = threshold_for_recall(scores, 0.9)
    assert t == pytest.approx(0.2) and np.mean(scores >= t) >= 0.9
    assert np.mean(scores >= np.nextafter(t, 1.0)) < 0.9


def test_the_model_file_round_trips(tmp_path):
    model = FitModel(np.linspace(-1, 1, 769, dtype=np.float32), 0.25, 0.6)
    model.save(tmp_path / "tool_fit.npz")
    loaded = FitModel.load(tmp_path / "tool_fit.npz")
    features = np.random.default_rng(0).normal(size=(4, 769)).astype(np.float32)
    assert loaded.threshold == pytest.approx(0.6)
    assert np.allclose(loaded.probability(features), model.probability(features), atol=1e-6)


def test_training_pairs_read_no_request_of_the_gate_or_dev_no_fit_slices():
    from tandem.eval.datasets import load_items
    from tandem.training.modifiers.data.automation import _request_text
    from tandem.training.modifiers.scale_select import live_irrelevance_items

    gate = [it for it in load_items("bfcl", split="test")
            if "irrelevance" in it.meta["category"] or it.meta["category"].startswith("live")]
    held_out = {_request_text(it) for it in [*gate, *live_irrelevance_items(200, 4000)]}
    assert len(held_out) > 1500
    pairs = training_pairs()
    assert {label for *_, label in pairs} == {0, 1}
    assert not {request for request, _, _ in pairs} & held_out
