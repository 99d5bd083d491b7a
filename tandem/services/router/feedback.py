"""Feedback on routed requests feeds the live routing-accuracy metric.

The router remembers the domain it chose for recent requests (bounded LRU by request id); a
feedback call naming the correct domain counts as correct or wrong in `tandem_routing_feedback`.
"""

from __future__ import annotations

from collections import OrderedDict

from pydantic import BaseModel, Field


class FeedbackRequest(BaseModel):
    request_id: str = Field(min_length=1)
    correct_domain: str | None = None
    rating: int | None = Field(default=None, ge=-1, le=5, description="-1/1 thumbs, or 1..5 stars.")


class FeedbackResponse(BaseModel):
    request_id: str
    predicted_domain: str | None
    correct: bool | None


class RecentDecisions:
    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def remember(self, request_id: str, domain: str, route: str) -> None:
        self._items[request_id] = (domain, route)
        self._items.move_to_end(request_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, request_id: str) -> tuple[str, str] | None:
        return self._items.get(request_id)
