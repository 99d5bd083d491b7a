"""The domain routers a router service can be configured with, named here and only here.

The router service's settings pick one by name (RouteLLM-style registry, no if/elif):
`build_router("onnx", artifacts_dir=..., domains=...)` or `build_router("keywords")`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tandem.services.routing.base import DomainRouter, RouterLoadError
from tandem.services.routing.keywords import KeywordRouter
from tandem.services.routing.onnx_router import OnnxRouter

ROUTERS: dict[str, Callable[..., DomainRouter]] = {"keywords": KeywordRouter, "onnx": OnnxRouter}


def build_router(name: str, **kwargs: Any) -> DomainRouter:
    if name not in ROUTERS:
        raise RouterLoadError(f"unknown domain router '{name}'; known: {', '.join(sorted(ROUTERS))}")
    return ROUTERS[name](**kwargs)
