"""Scoring a recorded matrix again with today's scorers: answers whose score the fixed scorer changes
are listed, and the pairing with the base is redone on the new scores."""

from __future__ import annotations

import pytest

from tandem.training.modifiers.config import TaskSlice
from tandem.training.modifiers.rescore import rescore
from tandem.training.modifiers.task_eval import slice_items

WHERE = {"category": ["irrelevance"]}


def _row(item_id: str, score: float, response: str = "", calls: list | None = None) -> dict:
    return {"id": item_id, "score": score, "response": response, "tool_calls": calls or []}


def test_a_definition_scored_as_a_call_is_rescored_and_the_pairing_redone():
    items = slice_items(TaskSlice(suite="bfcl", limit=3, where=WHERE))
    name = items[0].tools[0]["function"]["name"]
    call = [{"id": "c", "type": "function", "function": {"name": name, "arguments": "{}"}}]
    base = [_row(items[0].id, 0.0, f"```python\ndef {name}():\n    return 1\n```"),  # old scorer: a call
            _row(items[1].id, 1.0, "No function fits."),
            _row(items[2].id, 1.0, "No function fits.")]
    modifier = [_row(items[0].id, 0.0, calls=call), _row(items[1].id, 0.0, calls=call),
                _row(items[2].id, 1.0, "I cannot help with that.")]
    matrix = {"matrix": {"irrelevance": {"suite": "bfcl", "where": WHERE, "n": 3,
                                         "items": {"tandem-base": base, "tandem-code": modifier}}}}
    result = rescore(matrix)["irrelevance"]
    assert result["base"]["changed"] == [items[0].id]
    assert result["base"]["was"]["score"] == pytest.approx(2 / 3) and result["base"]["now"]["score"] == 1.0
    code = result["models"]["tandem-code"]
    assert code["changed"] == [] and code["now"]["score"] == pytest.approx(1 / 3)
    assert (code["vs_base_now"]["wins"], code["vs_base_now"]["losses"]) == (0, 2)


def test_a_matrix_of_other_items_is_refused():
    items = slice_items(TaskSlice(suite="bfcl", limit=2, where=WHERE))
    rows = [_row(it.id, 1.0) for it in items]
    matrix = {"matrix": {"irrelevance": {"suite": "bfcl", "where": WHERE, "n": 3,
                                         "items": {"tandem-base": rows, "tandem-code": rows}}}}
    with pytest.raises(ValueError, match="not the harness's slice"):
        rescore(matrix)


def test_scale_select_dev_answers_are_rescored_in_their_own_format():
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig
    from tandem.training.modifiers.rescore import rescore_scale_state
    from tandem.training.modifiers.scale_select import dev_items

    rule = load_config(ModifierConfig, "configs/modifiers/automation.yaml", []).serving.scale_selection
    items = dev_items(rule)
    ids = {part: [it.id for it in its] for part, its in items.items()}
    rows = {"calls": [_row(i, 0.0, "No call.") for i in ids["calls"]],
            "no_fit": [_row(i, 1.0, "No function fits.") for i in ids["no_fit"]]}
    rows["no_fit"][0] = _row(ids["no_fit"][0], 0.0, '{"name": "Acme Bakery", "city": "Chicago"}')  # old: a call
    state = {"domain": "automation", "ids": ids, "rows": {"base": rows}, "checks": {"0.6": {}}, "chosen": 0.6}
    rescored, changed = rescore_scale_state(state)
    assert changed == {"base": {"no_fit": 1}}
    assert all(r["score"] == 1.0 for r in rescored["rows"]["base"]["no_fit"])
    assert "checks" not in rescored and "chosen" not in rescored  # tool_fit_dev chooses again
