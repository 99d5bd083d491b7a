"""One scorer per suite: `score(item, reply) -> Score`, all in [0, 1].

Code scorers run generated programs in the sandbox (seconds, blocking: the runner calls them in
a worker thread); the others are pure functions of the reply text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from tandem.eval.bfcl_tools import check_calls
from tandem.eval.choice_answers import extract_choice
from tandem.eval.code_answers import humaneval_program, mbpp_program
from tandem.eval.datasets import EvalItem
from tandem.eval.math_answers import extract_math, extract_number, math_equivalent, numbers_match
from tandem.eval.sandbox import SandboxLimits, run_python
from tandem.eval.tool_answers import extract_calls


class Reply(BaseModel):
    """What the endpoint answered: the message text and any structured tool calls."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)


class Score(BaseModel):
    value: float = Field(ge=0.0, le=1.0)
    extracted: Any = None
    detail: str = ""


def _code(program_of: Callable[[str, dict], str]) -> Callable[[EvalItem, Reply], Score]:
    def score(item: EvalItem, reply: Reply) -> Score:
        result = run_python(program_of(reply.text, item.gold), SandboxLimits())
        tail = result.stderr_tail.strip().splitlines()
        return Score(value=float(result.passed), extracted=result.status, detail=tail[-1] if tail else "")

    return score


def score_number(item: EvalItem, reply: Reply) -> Score:
    answer = extract_number(reply.text)
    return Score(value=float(numbers_match(answer, item.gold)), extracted=answer)


def score_math(item: EvalItem, reply: Reply) -> Score:
    answer = extract_math(reply.text)
    return Score(value=float(math_equivalent(answer, item.gold)), extracted=answer)


def score_choice(item: EvalItem, reply: Reply) -> Score:
    letter = extract_choice(reply.text, item.meta["options"])
    return Score(value=float(letter == item.gold), extracted=letter)


def score_bfcl(item: EvalItem, reply: Reply) -> Score:
    names = {tool["function"]["name"] for tool in item.tools or []}
    calls = extract_calls(reply.text, reply.tool_calls, names)
    if "irrelevance" in item.meta["category"]:
        return Score(value=float(not calls), extracted=calls, detail="must not call a function")
    if not calls:
        return Score(value=0.0, extracted=calls, detail="no function call")
    try:
        valid, error = check_calls(item.meta["functions"], calls, item.gold, item.meta["category"])
    except Exception as exc:  # noqa: BLE001 - BFCL's checker raises on malformed argument shapes
        valid, error = False, f"checker error: {exc}"
    return Score(value=float(valid), extracted=calls, detail=error)


SCORERS: dict[str, Callable[[EvalItem, Reply], Score]] = {
    "humaneval": _code(humaneval_program),
    "mbpp": _code(mbpp_program),
    "gsm8k": score_number,
    "math500": score_math,
    "math": score_math,
    "arc_easy": score_choice,
    "arc_challenge": score_choice,
    "mmlu": score_choice,
    "bfcl": score_bfcl,
}
BLOCKING_SUITES = {"humaneval", "mbpp"}


def score(item: EvalItem, reply: Reply) -> Score:
    return SCORERS[item.suite](item, reply)
