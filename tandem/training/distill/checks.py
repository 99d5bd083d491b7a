"""Answer checks, where a category's tasks have a checker:

- numeric (GSM8K/MATH-like): the teacher solves the task a second time, independently; the two
  final numbers must agree (self-consistency: no gold answer exists for a new task).
- python (MBPP/HumanEval-like): the answer's code must pass the task's own `assert` lines in the
  evaluation sandbox; without asserts it must at least compile.
Categories of other suites are kept unchecked (and marked so in the output rows).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable

from tandem.eval.code_answers import extract_code
from tandem.eval.math_answers import extract_number, numbers_match
from tandem.eval.sandbox import SandboxLimits, run_python

SUITE_CHECKERS = {
    "gsm8k": "numeric",
    "math": "numeric",
    "math500": "numeric",
    "mbpp": "python",
    "humaneval": "python",
}
_ASSERT = re.compile(r"^\s*assert\b.*$", re.MULTILINE)


def checker_for(suites: dict[str, int]) -> str | None:
    """The checker of a category's most frequent suite, if that suite has one."""
    if not suites:
        return None
    top = Counter(suites).most_common(1)[0][0]
    return SUITE_CHECKERS.get(top)


async def check_numeric(answer: str, solve_again: Callable[[], Awaitable[str]]) -> str | None:
    """None if the answer passes, else why not."""
    first = extract_number(answer)
    if first is None:
        return "no_final_number"
    second = extract_number(await solve_again())
    return None if second is not None and numbers_match(first, second) else "answers_disagree"


async def check_python(task: str, answer: str) -> str | None:
    code = extract_code(answer)
    asserts = _ASSERT.findall(task)
    if not asserts:
        try:
            compile(code, "<answer>", "exec")
        except SyntaxError:
            return "does_not_compile"
        return None
    program = f"{code}\n\n" + "\n".join(a.strip() for a in asserts) + "\n"
    result = await asyncio.to_thread(run_python, program, SandboxLimits(timeout_s=10))
    return None if result.passed else f"tests_{result.status}"
