"""task_matrix --base-from: the base's answers of an earlier matrix are reused per slice (only the
candidates are asked), scored again by today's scorer, and refused when they are not exactly the
slice's items."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tandem.training.modifiers import task_eval
from tandem.training.modifiers.config import TaskSlice


def _fake(monkeypatch, asked):
    items = [SimpleNamespace(id=f"i{k}") for k in range(4)]
    monkeypatch.setattr(task_eval, "slice_items", lambda task: items)
    monkeypatch.setattr(task_eval, "score_recorded", lambda item, row: row["score"])

    async def score_model(urls, model, subset, task, concurrency):
        asked.append(model)
        return [{"id": it.id, "score": 1.0, "error": None} for it in subset]

    monkeypatch.setattr(task_eval, "_score_model", score_model)
    return items


def test_reused_base_rows_are_not_asked_again(monkeypatch):
    asked: list[str] = []
    items = _fake(monkeypatch, asked)
    base = [{"id": it.id, "score": float(k % 2), "error": None} for k, it in enumerate(items)]
    out = task_eval.score_matrix("http://x/v1", {"s": TaskSlice(suite="bfcl")}, {"s": ["tandem-base", "tandem-a"]},
                                 0.95, base_rows={"s": base})
    assert asked == ["tandem-a"]
    assert out["s"]["items"]["tandem-base"] == base
    assert out["s"]["vs_base"]["tandem-a"]["wins"] == 2 and out["s"]["vs_base"]["tandem-a"]["losses"] == 0


def test_reused_base_rows_of_other_items_are_refused(monkeypatch):
    _fake(monkeypatch, [])
    with pytest.raises(ValueError, match="not this slice's items"):
        task_eval.score_matrix("http://x/v1", {"s": TaskSlice(suite="bfcl")}, {"s": ["tandem-base", "tandem-a"]},
                               0.95, base_rows={"s": [{"id": "other", "score": 1.0, "error": None}]})


def test_reused_base_rows_of_a_shorter_slice_cover_a_prefix_and_the_base_answers_the_rest(monkeypatch):
    asked: list[tuple[str, list[str]]] = []
    items = [SimpleNamespace(id=f"i{k}") for k in range(4)]
    monkeypatch.setattr(task_eval, "slice_items", lambda task: items)
    monkeypatch.setattr(task_eval, "score_recorded", lambda item, row: row["score"])

    async def score_model(urls, model, subset, task, concurrency):
        asked.append((model, [it.id for it in subset]))
        return [{"id": it.id, "score": 1.0, "error": None} for it in subset]

    monkeypatch.setattr(task_eval, "_score_model", score_model)
    earlier = [{"id": "i0", "score": 0.0, "error": None}, {"id": "i1", "score": 0.0, "error": None}]
    out = task_eval.score_matrix("http://x/v1", {"s": TaskSlice(suite="bfcl")}, {"s": ["tandem-base", "tandem-a"]},
                                 0.95, base_rows={"s": earlier})
    assert sorted(asked) == [("tandem-a", ["i0", "i1", "i2", "i3"]), ("tandem-base", ["i2", "i3"])]
    assert [r["id"] for r in out["s"]["items"]["tandem-base"]] == ["i0", "i1", "i2", "i3"]
    assert out["s"]["items"]["tandem-base"][:2] == earlier and out["s"]["base_reused"] == 2
    assert out["s"]["vs_base"]["tandem-a"]["wins"] == 2


def test_reused_base_rows_with_a_gap_are_refused(monkeypatch):
    _fake(monkeypatch, [])
    rows = [{"id": "i0", "score": 1.0, "error": None}, {"id": "i2", "score": 1.0, "error": None}]
    with pytest.raises(ValueError, match="not this slice's items"):
        task_eval.score_matrix("http://x/v1", {"s": TaskSlice(suite="bfcl")}, {"s": ["tandem-base", "tandem-a"]},
                               0.95, base_rows={"s": rows})


def test_reused_base_answers_are_scored_by_todays_scorer(monkeypatch):
    """A base answer recorded under an older scorer (a JSON object with a `name` read as a call on BFCL
    irrelevance) is scored again, so both arms of the gate are scored alike."""
    irrelevance = TaskSlice(suite="bfcl", limit=2, where={"category": ["irrelevance"]}, max_tokens=256)
    items = task_eval.slice_items(irrelevance)

    async def score_model(urls, model, subset, task, concurrency):
        return [{"id": it.id, "score": 1.0, "error": None} for it in subset]

    monkeypatch.setattr(task_eval, "_score_model", score_model)
    stale = [{"id": it.id, "score": 0.0, "error": None, "tool_calls": [],
              "response": '{"name": "New York City", "address": "NY"}'} for it in items]
    out = task_eval.score_matrix("http://x/v1", {"irrelevance": irrelevance},
                                 {"irrelevance": ["tandem-base", "tandem-a"]}, 0.95, base_rows={"irrelevance": stale})
    assert [r["score"] for r in out["irrelevance"]["items"]["tandem-base"]] == [1.0, 1.0]
    assert out["irrelevance"]["base_rescored"] == 2 and out["irrelevance"]["base_reused"] == 2
    assert out["irrelevance"]["vs_base"]["tandem-a"]["wins"] == 0
