"""Benchmark suites as chat requests: `load_items(suite)` turns raw rows into `EvalItem`s.

A suite is what `tandem eval --suite` names; its items carry the chat messages we send, the
`tools` (BFCL), the gold answer in the form its scorer expects, and the dataset + id that the
split files and the contamination guard refer to (MATH-500 items are MATH items, dataset "math").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from tandem.eval import sources
from tandem.eval.sources import raw_items
from tandem.eval.splits import split_ids

LETTERS = "ABCDEFGHIJ"


class EvalItem(BaseModel):
    id: str
    suite: str
    dataset: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    gold: Any = Field(description="answer (str), tests (code) or possible answers (BFCL)")
    meta: dict[str, Any] = Field(default_factory=dict)


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _humaneval(row: dict) -> EvalItem:
    text = (
        "Complete the following Python function. Reply with the complete function (signature "
        f"included) in one ```python code block.\n\n```python\n{row['prompt']}```"
    )
    return EvalItem(
        id=row["id"],
        suite="humaneval",
        dataset="humaneval",
        messages=_user(text),
        gold={"prompt": row["prompt"], "test": row["test"], "entry_point": row["entry_point"]},
    )


def _mbpp(row: dict) -> EvalItem:
    tests = "\n".join(row["test_list"])
    text = (
        f"{row['text']}\nYour code should pass these tests:\n\n{tests}\n\n"
        "Reply with the Python function in one ```python code block."
    )
    return EvalItem(
        id=row["id"],
        suite="mbpp",
        dataset="mbpp",
        messages=_user(text),
        gold={"tests": row["test_list"], "setup": row["test_setup_code"]},
    )


def _gsm8k(row: dict) -> EvalItem:
    text = (
        f"{row['question']}\n\nSolve the problem step by step. End with a line of the form "
        '"The answer is N." where N is a number.'
    )
    return EvalItem(
        id=row["id"], suite="gsm8k", dataset="gsm8k", messages=_user(text), gold=row["short_answer"]
    )


def _math(row: dict, suite: str) -> EvalItem:
    text = f"{row['problem']}\n\nSolve the problem step by step and put the final answer in \\boxed{{}}."
    return EvalItem(
        id=row["id"],
        suite=suite,
        dataset="math",
        messages=_user(text),
        gold=row["answer"],
        meta={"subject": row["subject"], "level": row["level"]},
    )


def _multiple_choice(
    suite: str, item_id: str, question: str, options: list[str], gold_index: int, meta: dict | None = None
) -> EvalItem:
    lines = "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options))
    text = (
        f"{question}\n\n{lines}\n\nAnswer with the letter of the correct option, "
        'on a line of the form "Answer: X".'
    )
    return EvalItem(
        id=item_id,
        suite=suite,
        dataset=suite,
        messages=_user(text),
        gold=LETTERS[gold_index],
        meta={"options": options, **(meta or {})},
    )


def _arc(row: dict, suite: str) -> EvalItem:
    # The shipped query is "Question: q\n A. opt\n B. opt\nAnswer:"; split it back into parts.
    body = row["query"].removeprefix("Question: ").removesuffix("Answer:").rstrip()
    labels = "|".join(re.escape(label) for label in row["labels"])
    question, *options = re.split(rf"\n (?:{labels})\. ", body)
    if len(options) != len(row["labels"]):
        raise ValueError(f"cannot parse the options of ARC item {row['id']}")
    return _multiple_choice(suite, row["id"], question.strip(), [o.strip() for o in options], row["gold"])


def _mmlu(row: dict) -> EvalItem:
    return _multiple_choice(
        "mmlu", row["id"], row["question"].strip(), row["choices"], row["answer"], {"subject": row["subject"]}
    )


def _bfcl(row: dict) -> EvalItem:
    from tandem.eval.bfcl_tools import to_openai_tools

    return EvalItem(
        id=row["id"],
        suite="bfcl",
        dataset="bfcl",
        messages=row["question"][0],
        tools=to_openai_tools(row["function"]),
        gold=row["ground_truth"],
        meta={"category": row["category"], "functions": row["function"]},
    )


def _math500_rows() -> Iterator[dict]:
    by_id = {row["id"]: row for row in raw_items("math")}
    return (by_id[i] for i in sources.math500_ids())


SUITES: dict[str, tuple[str, Callable[[], Iterator[dict]], Callable[[dict], EvalItem]]] = {
    "humaneval": ("humaneval", lambda: raw_items("humaneval"), _humaneval),
    "mbpp": ("mbpp", lambda: raw_items("mbpp"), _mbpp),
    "gsm8k": ("gsm8k", lambda: raw_items("gsm8k"), _gsm8k),
    "math500": ("math", _math500_rows, lambda r: _math(r, "math500")),
    "math": ("math", lambda: raw_items("math"), lambda r: _math(r, "math")),
    "arc_easy": ("arc_easy", lambda: raw_items("arc_easy"), lambda r: _arc(r, "arc_easy")),
    "arc_challenge": (
        "arc_challenge",
        lambda: raw_items("arc_challenge"),
        lambda r: _arc(r, "arc_challenge"),
    ),
    "mmlu": ("mmlu", lambda: raw_items("mmlu"), _mmlu),
    "bfcl": ("bfcl", lambda: raw_items("bfcl"), _bfcl),
}


def suite_dataset(suite: str) -> str:
    """The dataset (split-file name) a suite's ids belong to."""
    if suite not in SUITES:
        raise KeyError(f"unknown suite '{suite}'; known: {', '.join(SUITES)}")
    return SUITES[suite][0]


def load_items(suite: str, split: str | None = None, limit: int | None = None) -> list[EvalItem]:
    """The suite's items, optionally only one split ("train", "dev", "test").

    With `limit`, a deterministic sample: items ordered by sha256 of their id, so a small run
    spans subjects and categories instead of the first file's first rows.
    """
    dataset = suite_dataset(suite)
    _, rows, build = SUITES[suite]
    keep = split_ids(dataset, split) if split is not None else None
    items = [build(row) for row in rows() if keep is None or row["id"] in keep]
    if limit is not None:
        items = sorted(items, key=lambda it: hashlib.sha256(f"{suite}:{it.id}".encode()).hexdigest())[:limit]
    return items
