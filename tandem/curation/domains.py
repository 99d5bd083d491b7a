"""Domain tags from a transparent rule set: regexes per domain, most matches wins.

The rules read the user's request and the answer: an answer with a fenced code block is code
even when the question does not say "python". Users replace the table in the recipe's
`domain_rules`; the tag is a starting label for router training, not ground truth.
"""

from __future__ import annotations

import re

DEFAULT_DOMAIN_RULES: dict[str, list[str]] = {
    "automation": [r"\b(bash|shell|zsh|powershell|terminal|command[- ]line|cron(tab)?|systemd|kubectl|docker"
                   r"|ansible|terraform|makefile|ci/cd|github actions|cli)\b",
                   r"\b(function[_ ]call(ing)?|tool[_ ]calls?|api (call|request)|webhook|automat\w*|schedul\w+)\b",
                   r"```(bash|sh|shell|console|powershell|yaml)\b", r"(^|\n)\s*\$ \w+", r"\b(curl|grep|sed|awk|"
                   r"chmod|ssh|rsync|scp|pip install|apt(-get)? install)\b"],
    "code": [r"```", r"\b(python|javascript|typescript|java|c\+\+|c#|golang|rust|ruby|php|kotlin|swift|sql|html"
             r"|css|react|django|numpy|pandas)\b",
             r"\b(def|class|return|import|function|const|public static|#include)\b.*[(:{]",
             r"\b(code|program|algorithm|compile[rd]?|debug|bug|refactor|unit tests?|regex|recursion)\b"],
    "reasoning": [r"\b(solve|calculate|compute|prove|equation|probability|how many|how much|what is the "
                  r"(sum|product|value|remainder)|percent(age)?|ratio|average|integer|fraction|derivative"
                  r"|integral|step[- ]by[- ]step|logic(al)? puzzle|deduce|infer)\b",
                  r"\d+\s*[-+*/×÷^=]\s*\d+", r"\\(frac|sqrt|boxed|cdot|times)\b|\$[^$\n]+\$", r"####\s*-?\d"],
}


class DomainTagger:
    def __init__(self, rules: dict[str, list[str]], default: str = "general"):
        self.default = default
        self.rules = {d: [re.compile(p, re.IGNORECASE) for p in patterns] for d, patterns in rules.items()}

    def scores(self, text: str) -> dict[str, int]:
        return {domain: sum(1 for p in patterns if p.search(text)) for domain, patterns in self.rules.items()}

    def tag(self, text: str) -> str:
        scores = self.scores(text)
        best = max(scores.values(), default=0)
        if best == 0:
            return self.default
        return next(d for d, s in scores.items() if s == best)
