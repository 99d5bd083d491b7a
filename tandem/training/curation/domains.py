"""Domain tags from a transparent rule set: per domain, keywords and a few structural regexes.

A domain's score is the number of its distinct keywords present plus the number of its patterns
that match, over the user's request and the answer (an answer holding a fenced code block is
code even when the question does not say "python"). Highest score wins, ties go to the domain
listed first, no hit means the default domain.

Keywords are matched against the record's lowercase words (phrases against those words joined by
single spaces): one pass over the text. Regex alternations over every record were the slowest
step of curation at 640K records. Users replace the table in the recipe's `domain_rules`; a tag is
a starting label for router training, not ground truth.
"""

from __future__ import annotations

import re

from pydantic import Field

from tandem.common.recipe_config import RecipeModel


class DomainRule(RecipeModel):
    keywords: list[str] = Field(default_factory=list, description="Lowercase words or two-word phrases.")
    patterns: list[str] = Field(
        default_factory=list, description="Regexes (case-sensitive) over the raw text."
    )


DEFAULT_DOMAIN_RULES: dict[str, DomainRule] = {
    "automation": DomainRule(
        keywords=[
            "bash",
            "shell",
            "zsh",
            "powershell",
            "terminal",
            "command line",
            "cron",
            "crontab",
            "systemd",
            "kubectl",
            "docker",
            "ansible",
            "terraform",
            "makefile",
            "cli",
            "function call",
            "tool call",
            "api call",
            "webhook",
            "automate",
            "automation",
            "schedule",
            "curl",
            "grep",
            "sed",
            "awk",
            "chmod",
            "ssh",
            "rsync",
            "pip install",
            "apt get",
            "script",
        ],
        patterns=[r"```(?:bash|sh|shell|console|powershell|yaml)\b", r"(?m)^\s*\$ \w"],
    ),
    "code": DomainRule(
        keywords=[
            "python",
            "javascript",
            "typescript",
            "java",
            "golang",
            "rust",
            "ruby",
            "php",
            "kotlin",
            "swift",
            "sql",
            "html",
            "css",
            "react",
            "django",
            "numpy",
            "pandas",
            "code",
            "program",
            "algorithm",
            "compile",
            "compiler",
            "debug",
            "bug",
            "refactor",
            "unit test",
            "regex",
            "recursion",
            "function",
        ],
        patterns=[r"```", r"\b(?:def|class|function|fn|func)\s+\w+\s*[(:{<]", r"#include\s*<"],
    ),
    "reasoning": DomainRule(
        keywords=[
            "solve",
            "calculate",
            "compute",
            "prove",
            "equation",
            "probability",
            "how many",
            "how much",
            "percent",
            "percentage",
            "ratio",
            "average",
            "integer",
            "fraction",
            "derivative",
            "integral",
            "step by",
            "puzzle",
            "deduce",
            "remainder",
            "sum of",
            "total",
        ],
        patterns=[r"\d\s*[-+*/×÷^=]\s*\d", r"\\(?:frac|sqrt|boxed|cdot|times)\b", r"####\s*-?\d"],
    ),
}


class DomainTagger:
    def __init__(self, rules: dict[str, DomainRule], default: str = "general"):
        self.default = default
        self.words = {d: {k.lower() for k in r.keywords if " " not in k} for d, r in rules.items()}
        self.phrases = {d: [f" {k.lower()} " for k in r.keywords if " " in k] for d, r in rules.items()}
        self.patterns = {d: [re.compile(p) for p in r.patterns] for d, r in rules.items()}

    def scores(self, text: str, words: list[str]) -> dict[str, int]:
        """`words`: the text's lowercase word tokens (`normalize.words`), computed once per record."""
        present, joined = set(words), f" {' '.join(words)} "
        return {
            d: len(kw & present)
            + sum(1 for p in self.phrases[d] if p in joined)
            + sum(1 for p in self.patterns[d] if p.search(text))
            for d, kw in self.words.items()
        }

    def tag(self, text: str, words: list[str]) -> str:
        scores = self.scores(text, words)
        best = max(scores.values(), default=0)
        if best == 0:
            return self.default
        return next(d for d, s in scores.items() if s == best)
