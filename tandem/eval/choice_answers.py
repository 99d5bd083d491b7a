"""Which option a free-text reply chose, for ARC and MMLU.

Small models answer in many shapes: "Answer: B", "The correct answer is (B)", "**B**",
"B. Water can change phase", or just the option's text. Patterns are tried from the most
explicit to the least; a reply that names no option is unanswered.

A reply that echoes the option list ("A. water\\nB. ice ..." or "(A) water, (B) ice ...") is no
answer either, unless it also states one ("Answer: B"): reading the first listed letter as a choice
scored such echoes as "A" and made a small model look right a quarter of the time by chance.
"""

from __future__ import annotations

import re


def _listed_letters(text: str, cls: str) -> set[str]:
    """Letters written as option labels: "A." / "(B)" / "C)" starting a line, or "(D)" inline."""
    at_line_start = re.findall(rf"^\s*\(?({cls})[.):]", text, re.MULTILINE)
    inline = re.findall(rf"(?<![A-Za-z])\(({cls})\)", text)
    return set(at_line_start) | set(inline)


def extract_choice(reply: str, options: list[str]) -> str | None:
    """The chosen letter, or None. Letters must be capitals, so the article "a" is never option A."""
    cls = f"[{'ABCDEFGHIJ'[: len(options)]}]"
    text = reply.strip()
    stated = re.findall(rf"(?i:answer)(?:\s+(?i:is))?\s*[:\-]?\s*\**\s*\(?({cls})\)?(?![A-Za-z])", text)
    if stated:
        return stated[-1]
    if len(_listed_letters(text, cls)) >= 2:
        return None  # an echo of the options, not a choice
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
