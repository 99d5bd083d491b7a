"""Why the fallback gave no answer: one error class, its reason in `code` and in a header the router
reads (`x-tandem-fallback-refused`), so the router can say why escalation was refused."""

from __future__ import annotations

from tandem.common.errors import TandemError

REFUSED_HEADER = "x-tandem-fallback-refused"
STATUS = {"budget_exhausted": 429, "budget_unavailable": 503, "circuit_open": 503, "upstream_unavailable": 502,
          "upstream_timeout": 504, "upstream_rate_limited": 429, "upstream_error": 502}


class FallbackRefusedError(TandemError):
    error_type = "fallback_refused"

    def __init__(self, reason: str, message: str, retry_after_s: float | None = None):
        headers = {REFUSED_HEADER: reason}
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(1, int(retry_after_s + 0.999)))
        super().__init__(message, code=reason, headers=headers)
        self.reason = reason
        self.status_code = STATUS[reason]
