"""Reasoning-domain rows: MATH worked solutions (train/dev ids; MATH-500 is test and never
trained on) and GSM8K worked solutions, each under the evaluation harness's own prompt.

MATH solutions already end in `\\boxed{...}`, which the MATH prompt asks for. GSM8K's carry
calculator annotations (`<<16-3-4=9>>`) and a `#### 18` line; the annotations are dropped and the
last line becomes `The answer is 18.`, the form the GSM8K prompt asks for.

ARC (easy and challenge; grade-school science questions that take a step of inference) answers
name the option and end in the `Answer: X` line the multiple-choice prompt asks for: the 135M
base sits at the floor on GSM8K and MATH, so ARC-Easy is the reasoning task where a gain can show
(docs/MODIFIERS.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tandem.eval.datasets import load_items
from tandem.eval.sources import raw_items
from tandem.training.modifiers.data.rows import TrainingRow

_CALCULATOR = re.compile(r"<<[^>]*>>")


def gsm8k_solution(answer: str) -> str:
    """GSM8K's `answer` field as a worked solution ending in "The answer is N."."""
    body, _, final = _CALCULATOR.sub("", answer).rpartition("####")
    return f"{body.strip()}\nThe answer is {final.strip().replace(',', '')}."


def _rows(suite: str, split: str, solutions: dict[str, str]) -> Iterator[TrainingRow]:
    for item in load_items(suite, split=split):
        yield TrainingRow(id=f"{suite}/{item.id}", source=suite,
                          messages=[*item.messages, {"role": "assistant", "content": solutions[item.id]}])


def math_rows(split: str) -> Iterator[TrainingRow]:
    return _rows("math", split, {row["id"]: row["solution"].strip() for row in raw_items("math")})


def math500_rows(split: str) -> Iterator[TrainingRow]:
    return _rows("math500", split, {row["id"]: row["solution"].strip() for row in raw_items("math")})


def _choice_answer(item) -> str:
    letter = item.gold
    option = item.meta["options"]["ABCDEFGHIJ".index(letter)]
    return f"The correct option is {letter}: {option}\nAnswer: {letter}"


def arc_rows(suite: str, split: str) -> Iterator[TrainingRow]:
    for item in load_items(suite, split=split):
        yield TrainingRow(id=f"{suite}/{item.id}", source=suite,
                          messages=[*item.messages, {"role": "assistant", "content": _choice_answer(item)}])


def arc_easy_rows(split: str) -> Iterator[TrainingRow]:
    return arc_rows("arc_easy", split)


def arc_challenge_rows(split: str) -> Iterator[TrainingRow]:
    return arc_rows("arc_challenge", split)


def gsm8k_rows(split: str) -> Iterator[TrainingRow]:
    return _rows("gsm8k", split, {row["id"]: gsm8k_solution(row["answer"]) for row in raw_items("gsm8k")})
