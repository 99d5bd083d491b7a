"""Which option a free-text reply chose, for ARC and MMLU.

Small models answer in many shapes: "Answer: B", "The correct answer is (B)", "**B**",
"B. Water can change phase", or just the option's text. Patterns are tried from the most
explicit to the least; a reply that names no option, or only restates several, is unanswered.
"""

from __future__ import annotations

import re


def extract_choice(reply: str, options: list[str]) -> str | None:
    """The chosen letter, or None. Letters must be capitals, so the article "a" is never option A."""
    cls = f"[{'ABCDEFGHIJ'[: len(options)]}]"
    text = reply.strip()
    stated = re.findall(rf"(?i:answer)(?:\s+(?i:is))?\s*[:\-]?\s*\**\s*\(?({cls})\)?(?![A-Za-z])", text)
    if stated:
        return stated[-1]
    for pattern in (
        rf"(?i:option|choice)\s*\(?({cls})\)?(?![A-Za-z])",
        rf"\*\*\(?({cls})\)?[.):]?\*\*",
        rf"^\(?({cls})\)?(?:[.):]|\s*$)",
        rf"(?<![A-Za-z])\(({cls})\)",
    ):
        found = re.search(pattern, text, re.MULTILINE)
        if found:
            return found.group(1)
    named = ["ABCDEFGHIJ"[i] for i, opt in enumerate(options) if opt and opt.lower() in text.lower()]
    return named[0] if len(named) == 1 else None
