"""Keyword baseline router: cheap, transparent, and the floor the trained router must beat."""

from __future__ import annotations

import math
import re

from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.base import RouteDecision, last_user_text

DEFAULT_KEYWORDS: dict[str, list[str]] = {
    "code": [r"\bpython\b", r"\bjavascript\b", r"\btypescript\b", r"\bfunction\b", r"\bclass\b", r"\bbug\b",
             r"\bdebug\b", r"\bcompile", r"\bsql\b", r"\brust\b", r"\bjava\b", r"\bc\+\+", r"\bregex\b",
             r"```", r"\bdef\b", r"\bunit tests?\b", r"\brefactor", r"\bcode\b", r"\bhtml\b", r"\bgolang\b"],
    "reasoning": [r"\bhow many\b", r"\bsolve\b", r"\bequation\b", r"\bprobability\b", r"\bcalculate\b",
                  r"\bprove\b", r"\bpercent", r"\d+\s*[-+*/x×]\s*\d+", r"\bsum\b", r"\btotal\b", r"\bpuzzle\b",
                  r"\bif .* then\b", r"\bintegral\b", r"\bderivative\b", r"\bremainder\b"],
    "automation": [r"\bshell\b", r"\bbash\b", r"\bcommand\b", r"\bcron\b", r"\bdocker\b", r"\bkubectl\b",
                   r"\bdeploy", r"\bci\b", r"\bpipeline\b", r"\bapi call\b", r"\bcurl\b", r"\bscript\b",
                   r"\bautomat", r"\bfiles? in\b", r"\bdirectory\b", r"\bschedule\b", r"\bterraform\b"],
}


class KeywordRouter:
    """Counts keyword hits per domain; `tools` on the request is a strong automation signal."""

    cpu_bound = False  # a few regexes: cheaper than the hop to a thread the router makes for other routers

    def __init__(self, domains: list[str] | None = None, keywords: dict[str, list[str]] | None = None,
                 default_domain: str = "general", **_: object):
        table = keywords or DEFAULT_KEYWORDS
        self.domains = list(domains or [*table.keys(), default_domain])
        self.default_domain = default_domain
        self.patterns = {d: [re.compile(p, re.IGNORECASE) for p in table.get(d, [])] for d in self.domains}

    def scores(self, request: ChatCompletionRequest) -> dict[str, float]:
        text = last_user_text(request)
        scores = {d: float(sum(bool(p.search(text)) for p in pats)) for d, pats in self.patterns.items()}
        if request.tools and "automation" in scores:
            scores["automation"] += 3.0
        scores[self.default_domain] = scores.get(self.default_domain, 0.0) + 0.5
        return scores

    def route(self, request: ChatCompletionRequest) -> RouteDecision:
        scores = self.scores(request)
        peak = max(scores.values())
        exp = {d: math.exp(s - peak) for d, s in scores.items()}
        total = sum(exp.values())
        probs = {d: v / total for d, v in exp.items()}
        domain = max(probs, key=probs.get)
        return RouteDecision(domain=domain, confidence=probs[domain], probabilities=probs,
                             reason="keywords")
