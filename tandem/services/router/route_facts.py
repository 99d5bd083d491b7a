"""The facts of one routing decision, returned on every response as `x-tandem-*` headers."""

from __future__ import annotations

from pydantic import BaseModel


class RouteFacts(BaseModel):
    route: str
    domain: str
    confidence: float
    reason: str = ""
    escalated: bool = False
    cache: str = "miss"
    request_id: str = ""

    def headers(self) -> dict[str, str]:
        return {
            "x-tandem-route": self.route,
            "x-tandem-domain": self.domain,
            "x-tandem-confidence": f"{self.confidence:.4f}",
            "x-tandem-escalated": str(self.escalated).lower(),
            "x-tandem-cache": self.cache,
            "x-tandem-request-id": self.request_id,
        }
