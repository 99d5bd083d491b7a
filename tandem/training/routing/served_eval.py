"""Scoring the built router through its serving path (`OnnxRouter.route`), beside the keywords."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.registry import build_router
from tandem.training.routing.config import RouterRecipeConfig
from tandem.training.routing.dataset import build_examples, load_handwritten, load_real_prompts
from tandem.training.routing.examples import RoutingExample


def _accuracy(router, examples: list[RoutingExample], desc: str) -> float:
    hits = 0
    for ex in tqdm(examples, desc=desc, unit="req"):
        request = ChatCompletionRequest(model="auto", messages=ex.messages(), tools=ex.tools or None)
        hits += router.route(request).domain == ex.domain
    return round(hits / max(len(examples), 1), 4)


def served_accuracy(config: RouterRecipeConfig, include_test: bool = False) -> dict[str, Any]:
    sets = {"real_test": load_real_prompts(config.real_prompts.test, "real_test"),
            "handwritten": load_handwritten(config.handwritten)}
    sets = {name: [ex for ex in examples if ex.domain in config.domains] for name, examples in sets.items()}
    if include_test:
        sets["test"] = [ex for ex in build_examples(config) if ex.split == "test"]
    routers = {"onnx": build_router("onnx", artifacts_dir=config.artifacts_dir, domains=config.domains,
                                    entry=config.name),
               "keywords": build_router("keywords", domains=config.domains)}
    return {name: {s: _accuracy(router, examples, f"{name}/{s}") for s, examples in sets.items()}
            for name, router in routers.items()}
