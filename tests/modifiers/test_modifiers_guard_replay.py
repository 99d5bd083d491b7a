"""Replaying a stricter guard on a recorded matrix: a modifier call whose arguments the request does
not supply takes the base row's score, calls already guarded and answers without a call stay, and the
pairing with the base is redone."""

from __future__ import annotations

import pytest

from tandem.training.modifiers.config import TaskSlice
from tandem.training.modifiers.guard_replay import replay
from tandem.training.modifiers.task_eval import slice_items

WHERE = {"category": ["irrelevance"]}


def _row(item_id: str, score: float, model: str, calls: list | None = None) -> dict:
    return {"id": item_id, "score": score, "served_model": model, "tool_calls": calls or [], "response": ""}


def test_made_up_arguments_take_the_base_score_and_the_rest_stay():
    items = slice_items(TaskSlice(suite="bfcl", limit=3, where=WHERE))
    made_up = [{"function": {"name": "f", "arguments": '{"x": "zzqqxx-never-in-a-request"}'}}]
    base = [_row(it.id, 1.0, "tandem-base") for it in items]
    modifier = [_row(items[0].id, 0.0, "tandem-automation", made_up),   # tripped now: the base's 1.0
                _row(items[1].id, 0.0, "tandem-base", made_up),         # guarded when served: stays
                _row(items[2].id, 1.0, "tandem-automation")]            # no call: stays
    matrix = {"matrix": {"irrelevance": {"suite": "bfcl", "where": WHERE, "n": 3,
                                         "items": {"tandem-base": base, "tandem-automation": modifier}}}}
    result = replay(matrix, "tandem-automation", 0.34)["slices"]["irrelevance"]
    assert result["tripped"] == [items[0].id]
    assert result["was"]["score"] == pytest.approx(1 / 3) and result["guarded"]["score"] == pytest.approx(2 / 3)
    assert (result["vs_base"]["wins"], result["vs_base"]["losses"]) == (0, 1)


def test_a_matrix_of_other_items_is_refused():
    items = slice_items(TaskSlice(suite="bfcl", limit=2, where=WHERE))
    rows = [_row(it.id, 1.0, "tandem-base") for it in items]
    matrix = {"matrix": {"irrelevance": {"suite": "bfcl", "where": WHERE, "n": 3,
                                         "items": {"tandem-base": rows, "tandem-automation": rows}}}}
    with pytest.raises(ValueError, match="not the harness's slice"):
        replay(matrix, "tandem-automation", 0.34)


def _fit_model(bias: float):
    import numpy as np

    from tandem.training.modifiers.tool_fit_model import FitModel

    return FitModel(np.zeros(2 * 384 + 1, dtype=np.float32), bias, threshold=0.5)


@pytest.mark.parametrize(("bias", "tripped"), [(-5.0, 1), (5.0, 0)])
def test_a_tool_fit_model_trips_the_served_calls_it_scores_below_its_threshold(tmp_path, bias, tripped):
    items = slice_items(TaskSlice(suite="bfcl", limit=2, where=WHERE))
    name = items[0].tools[0]["function"]["name"]
    call = [{"function": {"name": name, "arguments": "{}"}}]
    base = [_row(it.id, 1.0, "tandem-base") for it in items]
    modifier = [_row(items[0].id, 0.0, "tandem-automation", call), _row(items[1].id, 1.0, "tandem-automation")]
    matrix = {"matrix": {"irrelevance": {"suite": "bfcl", "where": WHERE, "n": 2,
                                         "items": {"tandem-base": base, "tandem-automation": modifier}}}}
    _fit_model(bias).save(tmp_path / "tool_fit.npz")
    result = replay(matrix, "tandem-automation", fit_model=tmp_path / "tool_fit.npz")
    assert result["fit_threshold"] == pytest.approx(0.5)
    assert len(result["slices"]["irrelevance"]["tripped"]) == tripped
    assert result["slices"]["irrelevance"]["guarded"]["score"] == pytest.approx(0.5 + 0.5 * tripped)


def test_a_replay_needs_a_check():
    with pytest.raises(ValueError, match="nothing to replay"):
        replay({"matrix": {}}, "tandem-automation")
