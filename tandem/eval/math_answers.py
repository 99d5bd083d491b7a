"""Final-answer extraction and comparison for GSM8K (numbers) and MATH (LaTeX).

GSM8K follows lm-eval's two filters: the "The answer is N" line first, then "#### N", a boxed
answer, and finally the last number in the reply. MATH answers are compared by HuggingFace's
`math-verify`, which parses LaTeX (\\boxed{}, fractions, intervals, tuples, \\text{}) into SymPy
and checks equivalence, so `\\dfrac{14}{3}`, `14/3` and `4\\frac{2}{3}` all match `\\frac{14}{3}`.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from tandem.eval.sources import last_boxed

NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
ANSWER_IS = re.compile(rf"answer is:?\s*\**\s*(?:\\\(|\$)?\s*({NUMBER})", re.IGNORECASE)
HASHES = re.compile(rf"####\s*({NUMBER})")


def parse_number(text: str) -> Fraction | None:
    """'1,234', '$18', '18.50', '3/4', '-0.5', '50%' -> an exact Fraction; None if not a number."""
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".%")
    if re.fullmatch(r"-?\d+/\d+", cleaned):
        num, den = cleaned.split("/")
        return Fraction(int(num), int(den)) if int(den) else None
    try:
        return Fraction(Decimal(cleaned))
    except (InvalidOperation, ValueError):
        return None


def extract_number(reply: str) -> str | None:
    """The final numeric answer of a GSM8K-style reply, as written."""
    for pattern in (ANSWER_IS, HASHES):
        found = pattern.findall(reply)
        if found:
            return found[-1].strip()
    boxed = last_boxed(reply)
    if boxed is not None and parse_number(boxed) is not None:
        return boxed
    numbers = re.findall(NUMBER, reply)
    return numbers[-1].strip() if numbers else None


def numbers_match(predicted: str | None, gold: str) -> bool:
    if predicted is None:
        return False
    p, g = parse_number(predicted), parse_number(gold)
    return p is not None and g is not None and p == g


def extract_math(reply: str) -> str | None:
    """The reply's final answer: the last \\boxed{}, else "answer is X", else None."""
    boxed = last_boxed(reply)
    if boxed is not None:
        return boxed
    found = re.findall(r"answer is:?\s*\$?([^$\n]+?)\$?\s*\.?\s*$", reply, re.IGNORECASE | re.MULTILINE)
    return found[-1].strip() if found else None


def math_equivalent(predicted: str | None, gold: str) -> bool:
    if predicted is None:
        return False
    from math_verify import parse, verify

    # math-verify guards slow SymPy work with SIGALRM, which only the main thread may use.
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=timeout)
        pred_parsed = parse(f"${predicted}$", parsing_timeout=timeout)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:  # noqa: BLE001 - a reply SymPy cannot handle is simply wrong
        return False
