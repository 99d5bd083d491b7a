"""What the teacher is asked: new tasks like a category's examples, and answers to them."""

from __future__ import annotations

import json
import re
from typing import Any

# Instructions that make a reply checkable, per checker (see checks.py).
TASK_RULES = {
    "numeric": "Each task must have exactly one numeric final answer.",
    "python": "Each task must ask for one Python function and end with two or three `assert` lines that "
    "a correct function passes, as in the examples.",
}
ANSWER_RULES = {
    "numeric": "Solve the problem step by step, then end with a final line of the form `#### <number>`.",
    "python": "Reply with the complete Python function in one ```python code block.",
}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def generation_messages(
    category: dict[str, Any], examples: list[str], count: int, checker: str | None, request_index: int
) -> list[dict[str, str]]:
    shown = "\n\n".join(f"Example {i + 1}:\n{text}" for i, text in enumerate(examples))
    rules = TASK_RULES.get(checker or "", "")
    ask = (
        f"A small model failed tasks of this kind (category: {category['name']}; frequent terms: "
        f"{', '.join(category['terms'])}).\n\n{shown}\n\n"
        f"Write {count} new tasks of the same kind and difficulty. Vary the topic, names and numbers; "
        f"do not copy or paraphrase the examples. {rules}\n"
        f"Return only a JSON array of {count} strings, one task each. (Batch {request_index + 1}.)"
    )
    return [
        {"role": "system", "content": "You write new training tasks for a small language model."},
        {"role": "user", "content": ask},
    ]


def answer_messages(task: str, checker: str | None) -> list[dict[str, str]]:
    rules = ANSWER_RULES.get(checker or "")
    system = [{"role": "system", "content": rules}] if rules else []
    return [*system, {"role": "user", "content": task}]


def parse_tasks(reply: str) -> list[str] | None:
    """The JSON array of task strings in a reply (bare or in a code fence); None if there is none."""
    candidates = [*_FENCE.findall(reply), reply]
    for text in candidates:
        start, end = text.find("["), text.rfind("]")
        if start < 0 or end <= start:
            continue
        try:
            value = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            return [str(v).strip() for v in value if isinstance(v, str | int | float) and str(v).strip()]
    return None
