"""Shared helpers: gold-derived replies, so scorer and runner tests use the benchmarks' own answers."""

import json

import pytest

from tandem.eval.datasets import EvalItem
from tandem.eval.sources import raw_items


def _first_value(values):
    return next((v for v in values if v != ""), None)


def gold_reply(item: EvalItem) -> dict:
    """A correct assistant message for `item`: {"content": str, "tool_calls": list | None}."""
    if item.suite in ("humaneval", "mbpp"):
        row = next(r for r in raw_items(item.dataset) if r["id"] == item.id)
        code = row["prompt"] + row["canonical_solution"] if item.suite == "humaneval" else row["code"]
        return {"content": f"Here is the solution.\n```python\n{code}\n```", "tool_calls": None}
    if item.suite == "gsm8k":
        return {"content": f"Let me compute.\nThe answer is {item.gold}.", "tool_calls": None}
    if item.suite in ("math", "math500"):
        return {"content": f"Working... so the result is $\\boxed{{{item.gold}}}$.", "tool_calls": None}
    if item.suite == "bfcl":
        if "irrelevance" in item.meta["category"]:
            return {"content": "None of the functions can answer that.", "tool_calls": None}
        calls = []
        for i, call in enumerate(item.gold):
            (name, args), = call.items()
            arguments = {k: _first_value(v) for k, v in args.items() if _first_value(v) is not None}
            calls.append({"id": f"call_{i}", "type": "function",
                          "function": {"name": name.replace(".", "_"), "arguments": json.dumps(arguments)}})
        return {"content": None, "tool_calls": calls}
    return {"content": f"Answer: {item.gold}", "tool_calls": None}


@pytest.fixture
def gold_reply_for():
    return gold_reply
