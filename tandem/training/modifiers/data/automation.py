"""Automation-domain rows: BFCL function calling (train categories, train/dev ids) with the gold
calls as OpenAI `tool_calls`, plus MBPP-in-bash for shell scripting (see `code.py`).

The request side is the evaluation harness's BFCL item (`messages` + OpenAI `tools`, dots in
names already underscored), so the modifier sees exactly what `tandem eval --suite bfcl` sends.
The gold side takes, for each argument, the first acceptable value BFCL lists (recursively: a
nested dict lists acceptable values per key too); an argument whose only acceptable value is ""
(BFCL's "may be omitted") is left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tandem.eval.datasets import load_items
from tandem.training.modifiers.data.rows import TrainingRow


def gold_arguments(possible: dict[str, list[Any]]) -> dict[str, Any]:
    """One concrete argument dict from BFCL's possible answers (nested dicts use the same form)."""
    arguments = {}
    for name, options in possible.items():
        if not isinstance(options, list):  # some live categories nest plain values
            arguments[name] = _concrete(options)
            continue
        chosen = next((o for o in options if o != ""), None)
        if chosen is not None:
            arguments[name] = _concrete(chosen)
    return arguments


def _concrete(value: Any) -> Any:
    if isinstance(value, dict):
        return gold_arguments(value)
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


def gold_tool_calls(ground_truth: list[dict[str, dict]], item_id: str) -> list[dict[str, Any]]:
    calls = []
    for i, call in enumerate(ground_truth):
        (name, possible), = call.items()
        calls.append({"id": f"call_{item_id}_{i}", "type": "function",
                      "function": {"name": name.replace(".", "_"),
                                   "arguments": json.dumps(gold_arguments(possible))}})
    return calls


def bfcl_rows(split: str) -> Iterator[TrainingRow]:
    for item in load_items("bfcl", split=split):
        if not item.gold:
            continue
        answer = {"role": "assistant", "content": None, "tool_calls": gold_tool_calls(item.gold, item.id)}
        yield TrainingRow(id=f"bfcl/{item.id}", source="bfcl", messages=[*item.messages, answer], tools=item.tools)
