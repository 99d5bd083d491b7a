"""The domain-router interface the router service calls for `model="auto"`.

A router is one method: `route(request) -> RouteDecision`. The strategies live in their own modules
and are named in one place, `registry.py`.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from tandem.common.wire import ChatCompletionRequest


class RouteDecision(BaseModel):
    domain: str
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[str, float]
    reason: str = ""


class DomainRouter(Protocol):
    domains: list[str]

    def route(self, request: ChatCompletionRequest) -> RouteDecision: ...


class RouterLoadError(Exception):
    """A router artifact is missing, corrupt or does not fit the configured domains."""


def last_user_text(request: ChatCompletionRequest) -> str:
    """The text that decides the route: the last user message (system prompts rarely do)."""
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text()
    return request.messages[-1].text()
