"""The facts of one routing decision, returned on every response as `x-tandem-*` headers.

`cache` is hit, semantic (a similar prompt's answer, `cache_similarity` its cosine), miss or bypass;
`escalation_reason` names the policy (or "explicit model") that sent the request to the fallback,
`escalation_refused` why the fallback did not answer when escalation was wanted (the local answer
was served); `tool_guard_similarity` and `tool_guard_grounding` what the tool-fit guard measured on a
modifier's tool call it found not to fit the request (the base answered instead, tool_guard.py).
"""

from __future__ import annotations

from pydantic import BaseModel


class RouteFacts(BaseModel):
    route: str
    domain: str
    confidence: float
    reason: str = ""
    escalated: bool = False
    cache: str = "miss"
    cache_similarity: float | None = None
    request_id: str = ""
    escalation_reason: str = ""
    escalation_refused: str = ""
    tool_guard_similarity: float | None = None  # set when the tool-fit guard replaced a modifier's call
    tool_guard_grounding: float | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "x-tandem-route": self.route,
            "x-tandem-domain": self.domain,
            "x-tandem-confidence": f"{self.confidence:.4f}",
            "x-tandem-escalated": str(self.escalated).lower(),
            "x-tandem-cache": self.cache,
            "x-tandem-request-id": self.request_id,
        }
        if self.cache_similarity is not None:
            headers["x-tandem-cache-similarity"] = f"{self.cache_similarity:.4f}"
        if self.escalation_reason:
            headers["x-tandem-escalation-reason"] = self.escalation_reason
        if self.escalation_refused:
            headers["x-tandem-escalation-refused"] = self.escalation_refused
        if self.tool_guard_similarity is not None:
            headers["x-tandem-tool-guard"] = f"{self.tool_guard_similarity:.4f}"
        if self.tool_guard_grounding is not None:
            headers["x-tandem-tool-guard-grounding"] = f"{self.tool_guard_grounding:.4f}"
        return headers
