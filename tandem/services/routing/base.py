"""The domain-router interface the router service calls for `model="auto"`, and its registry.

A router is one method: `route(request) -> RouteDecision`. Strategies register a factory under a
name; the router service's settings pick one by name (RouteLLM-style registry, no if/elif).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

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


RouterFactory = Callable[..., DomainRouter]
ROUTER_REGISTRY: dict[str, RouterFactory] = {}


def register_router(name: str) -> Callable[[RouterFactory], RouterFactory]:
    def decorator(factory: RouterFactory) -> RouterFactory:
        ROUTER_REGISTRY[name] = factory
        return factory
    return decorator


def build_router(name: str, **kwargs: Any) -> DomainRouter:
    # Import the built-in strategies so they register themselves.
    from tandem.services.routing import keywords  # noqa: F401
    try:
        from tandem.services.routing import onnx_router  # noqa: F401
    except ImportError:  # the trained router is optional at serving time
        pass
    if name not in ROUTER_REGISTRY:
        raise RouterLoadError(f"unknown domain router '{name}'; known: {', '.join(sorted(ROUTER_REGISTRY))}")
    return ROUTER_REGISTRY[name](**kwargs)


def last_user_text(request: ChatCompletionRequest) -> str:
    """The text that decides the route: the last user message (system prompts rarely do)."""
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text()
    return request.messages[-1].text()
