"""The cross-encoder tool-fit check (automation run 11): pairs are read as one input within the token
budget, a saved model scores calls as the replay reads them, and the replay takes one check at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")


def _tokenizer():
    from tandem.training.minilm import minilm_dir
    from tandem.training.modifiers.tool_fit_cross import _pair_tokenizer

    return _pair_tokenizer(minilm_dir())


def test_a_pair_is_one_input_cut_longest_first():
    from tandem.training.modifiers.tool_fit_cross import MAX_PAIR_TOKENS, _encode_pairs

    tokenizer = _tokenizer()
    (ids, types), = _encode_pairs(tokenizer, [("what is the weather in paris", "get weather: a city's weather")])
    sep = tokenizer.token_to_id("[SEP]")
    assert ids[0] == tokenizer.token_to_id("[CLS]") and ids.count(sep) == 2 and ids[-1] == sep
    assert types == [0] * (ids.index(sep) + 1) + [1] * (len(ids) - ids.index(sep) - 1)
    (ids, types), = _encode_pairs(tokenizer, [("word " * 400, "short function: it does one thing")])
    assert len(ids) == MAX_PAIR_TOKENS and len(types) == len(ids)
    assert types.count(1) == len(tokenizer.encode("short function: it does one thing").ids) - 1  # kept whole


def _saved_model(path, bias: float, threshold: float):
    key = "encoder.layer.0.attention.self.query"
    np.savez(path, **{f"{key}.A": np.zeros((4, 384), np.float32), f"{key}.B": np.zeros((384, 4), np.float32)},
             head_weight=np.zeros((1, 384), np.float32), head_bias=np.array([bias], np.float32),
             threshold=np.float32(threshold))
    return path


def test_a_saved_model_scores_the_calls_of_a_message(tmp_path):
    from tandem.common.wire import ChatCompletionRequest
    from tandem.training.modifiers.tool_fit_cross import CrossFitModel

    model = CrossFitModel(_saved_model(tmp_path / "cross.npz", bias=1.0, threshold=0.8))
    assert model.threshold == pytest.approx(0.8)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "a city's weather",
                                               "parameters": {"type": "object", "properties": {}}}}]
    body = ChatCompletionRequest(model="tandem-automation", messages=[{"role": "user", "content": "weather in Oslo?"}],
                                 tools=tools)
    call = {"tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}
    assert model.call_fit(None, body, call) == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-5)
    assert model.call_fit(None, body, {"content": "no call"}) is None


def test_the_replay_takes_one_fit_check(tmp_path):
    from tandem.training.modifiers.guard_replay import replay

    with pytest.raises(ValueError, match="one tool-fit model"):
        replay({"matrix": {}}, "tandem-automation", fit_model=tmp_path / "a.npz", cross_model=tmp_path / "b.npz")
