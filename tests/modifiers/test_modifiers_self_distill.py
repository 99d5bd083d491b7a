"""Self-distillation keeps only programs that pass the item's tests in the harness's sandbox,
once each, as code-only rows on train ids; a rerun replaces its rows instead of doubling them."""

from __future__ import annotations

import json

from tandem.eval.datasets import load_items
from tandem.training.modifiers.self_distill import distill_rows, write_items

ITEM = {"id": "t1", "messages": [{"role": "user", "content": "Write add(a, b)."}],
        "gold": {"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], "setup": ""}}
RIGHT = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nIt adds a and b, then multiplies."
RIGHT_AGAIN = "```python\ndef add(a, b):\n    return a + b   \n\n```"
OTHER_RIGHT = "```python\ndef add(a, b):\n    return sum([a, b])\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
HANGS = "```python\ndef add(a, b):\n    while True:\n        pass\n```"


def test_only_distinct_passing_programs_become_code_only_rows():
    rows, passing = distill_rows([ITEM], [[WRONG, RIGHT, HANGS, RIGHT_AGAIN, OTHER_RIGHT]], per_item=4,
                                 workers=2, timeout_s=2.0)
    assert passing == [2]
    assert [r["id"] for r in rows] == ["mbpp_self/t1/0", "mbpp_self/t1/1"]
    answers = [r["messages"][-1]["content"] for r in rows]
    assert answers == ["```python\ndef add(a, b):\n    return a + b\n```",
                       "```python\ndef add(a, b):\n    return sum([a, b])\n```"]
    assert all(r["messages"][:-1] == ITEM["messages"] for r in rows)


def test_per_item_caps_the_rows_not_the_count():
    rows, passing = distill_rows([ITEM], [[RIGHT, OTHER_RIGHT]], per_item=1, workers=1, timeout_s=2.0)
    assert passing == [2] and len(rows) == 1


def test_items_are_train_ids_only(tmp_path):
    out = tmp_path / "items.jsonl"
    n = write_items(out)
    ids = {json.loads(line)["id"] for line in out.read_text().splitlines()}
    assert n == len(ids) > 0
    assert ids == {item.id for item in load_items("mbpp", split="train")}
    assert not ids & {item.id for item in load_items("mbpp", split="test")}
    assert not ids & {item.id for item in load_items("mbpp", split="dev")}
