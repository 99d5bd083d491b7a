"""Which domain a route serves, as the escalation policies read it (`tandem-code` -> `code`).

Which outcome labels stand for which domain's traffic, and when a domain has enough of them to fit
its own escalation models, is the training side's business: `tandem/training/escalation/domain_labels.py`.
"""

from __future__ import annotations

TOOL_DOMAIN = "automation"  # where a request with tools is an action: prose instead of a call fails it
ROUTE_PREFIX = "tandem-"


def domain_of_route(route: str | None) -> str | None:
    """`tandem-code` -> `code`; None for the base or any other model."""
    if route and route.startswith(ROUTE_PREFIX):
        return route.removeprefix(ROUTE_PREFIX)
    return None
