"""Escalation policies: when the router hands a request to the frontier fallback, and why.

A policy is one method, `judge(context) -> Verdict`, at one stage:

- `before` generation (also the only stage for streams: the decision is made before the first
  byte, because after it the client already holds local text that a fallback answer would
  contradict, and buffering the whole stream to decide would throw away time-to-first-token);
- `after` generation (non-streamed requests): the router asks the worker for logprobs and
  judges the answer itself (its log-probabilities and its structure against the request).

Policies register a factory under a name (as domain routers do); the router's settings list the
ones to run, in order; the first that says "escalate" decides, and its name is the reason in
`x-tandem-escalation-reason` and in `tandem_escalations_total{reason=...}`.

The model policies (difficulty, answer_confidence) judge a request only with its own domain's
model and threshold (tandem.services.escalation.domains); for a domain without one they have nothing to
say, so such a domain is escalated only by router confidence and the answer's structure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.escalation.domains import TOOL_DOMAIN, domain_of_route
from tandem.services.escalation.features import structure_failures
from tandem.services.escalation.models import (
    ANSWER_ENTRY,
    DIFFICULTY_ENTRY,
    AnswerConfidenceModel,
    DifficultyModel,
    load_thresholds,
    load_weights,
)
from tandem.services.routing.base import RouteDecision

Stage = Literal["before", "after"]


@dataclass
class EscalationContext:
    request: ChatCompletionRequest
    decision: RouteDecision | None = None  # None for an explicit model
    answer: Answer | None = None  # the local answer, after generation

    @property
    def domain(self) -> str | None:
        """The routed domain; for an explicit `tandem-<domain>` model, that domain."""
        return self.decision.domain if self.decision is not None else domain_of_route(self.request.model)


class Verdict(BaseModel):
    policy: str
    escalate: bool
    score: float
    threshold: float


class EscalationPolicy(Protocol):
    name: str
    stage: Stage
    needs_threshold: bool  # False: build_policy reads no calibrated threshold for it

    def judge(self, context: EscalationContext) -> Verdict | None:
        """None when the policy has nothing to say about this request."""


PolicyFactory = Callable[..., EscalationPolicy]


def build_policy(name: str, threshold: float | None, artifacts_dir: str | None) -> EscalationPolicy:
    if name not in POLICIES:
        raise ValueError(f"unknown escalation policy '{name}'; known: {', '.join(sorted(POLICIES))}")
    calibrated: float | dict[str, float] | None = threshold
    if threshold is None and getattr(POLICIES[name], "needs_threshold", True):
        if not artifacts_dir:
            raise ValueError(f"escalation policy '{name}' has no threshold and no artifacts to read one from")
        thresholds = load_thresholds(artifacts_dir)
        if name not in thresholds:
            raise ValueError(f"the calibrated thresholds hold none for '{name}': run `tandem escalation calibrate`")
        calibrated = thresholds[name]
    return POLICIES[name](threshold=calibrated, artifacts_dir=artifacts_dir)


def _domain_threshold(threshold: float | dict[str, float], domain: str | None) -> float | None:
    """A configured threshold applies to every domain; calibrated ones are per domain."""
    return threshold if not isinstance(threshold, dict) else threshold.get(domain or "")


class RouterConfidencePolicy:
    """Escalate a `model=auto` request whose domain decision is less sure than `threshold`."""

    name, stage, needs_threshold = "router_confidence", "before", True

    def __init__(self, threshold: float, **_: object):
        self.threshold = threshold

    def judge(self, context: EscalationContext) -> Verdict | None:
        if context.decision is None:
            return None
        confidence = context.decision.confidence
        return Verdict(policy=self.name, escalate=confidence < self.threshold, score=confidence,
                       threshold=self.threshold)


class DifficultyPolicy:
    """Escalate when the domain's difficulty model's P(local route fails) reaches its threshold."""

    name, stage, needs_threshold = "difficulty", "before", True

    def __init__(self, threshold: float | dict[str, float], artifacts_dir: str | None = None, **_: object):
        if not artifacts_dir:
            raise ValueError("the difficulty policy needs the artifacts folder holding its model")
        self.model = DifficultyModel(load_weights(artifacts_dir, DIFFICULTY_ENTRY))
        self.threshold = threshold

    def judge(self, context: EscalationContext) -> Verdict | None:
        threshold = _domain_threshold(self.threshold, context.domain)
        p_fail = self.model.p_fail(context.request, context.domain)
        if p_fail is None or threshold is None:
            return None
        return Verdict(policy=self.name, escalate=p_fail >= threshold, score=p_fail, threshold=threshold)


class AnswerConfidencePolicy:
    """Escalate when the domain's answer-confidence model's P(answer wrong) reaches its threshold."""

    name, stage, needs_threshold = "answer_confidence", "after", True

    def __init__(self, threshold: float | dict[str, float], artifacts_dir: str | None = None, **_: object):
        if not artifacts_dir:
            raise ValueError("the answer_confidence policy needs the artifacts folder holding its model")
        self.model = AnswerConfidenceModel(load_weights(artifacts_dir, ANSWER_ENTRY))
        self.threshold = threshold

    def judge(self, context: EscalationContext) -> Verdict | None:
        if context.answer is None or not context.answer.token_logprobs:
            return None
        threshold = _domain_threshold(self.threshold, context.domain)
        p_fail = self.model.p_fail(context.request, context.answer, context.domain)
        if p_fail is None or threshold is None:
            return None
        return Verdict(policy=self.name, escalate=p_fail >= threshold, score=p_fail, threshold=threshold)


class AnswerStructurePolicy:
    """Escalate an answer that fails a structure check against its request (any domain, no model):
    a tool call naming no offered function or with arguments its schema rejects, no call where the
    request forced one, fenced Python that does not parse, and prose instead of a call for a request
    the router sent to automation with tools offered. Needs no labels and no logprobs."""

    name, stage, needs_threshold = "answer_structure", "after", False

    def __init__(self, **_: object):
        pass

    def judge(self, context: EscalationContext) -> Verdict | None:
        if context.answer is None:
            return None
        failed = structure_failures(context.request, context.answer)
        # The router judged the request an action (automation) and the client offered tools for it:
        # an answer in prose instead of a call did not do what was asked.
        offered = bool(context.request.tools) and context.request.tool_choice != "none"
        if context.domain == TOOL_DOMAIN and offered and not context.answer.tool_calls:
            failed.append("call_missing")
        return Verdict(policy=self.name, escalate=bool(failed), score=float(len(failed)), threshold=1.0)


def first_escalation(policies: list[EscalationPolicy], stage: Stage, context: EscalationContext) -> Verdict | None:
    """The first verdict of `stage` that escalates, else None."""
    for policy in policies:
        if policy.stage == stage:
            verdict = policy.judge(context)
            if verdict is not None and verdict.escalate:
                return verdict
    return None


# Every policy a config can name, registered here and only here.
POLICIES: dict[str, PolicyFactory] = {"router_confidence": RouterConfidencePolicy, "difficulty": DifficultyPolicy,
                                       "answer_confidence": AnswerConfidencePolicy,
                                       "answer_structure": AnswerStructurePolicy}
