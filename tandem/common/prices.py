"""Token prices per model (configs/eval/prices.yaml) and what a run cost, or would have, per route."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from pydantic import Field

from tandem.common.recipe_config import RecipeModel, load_config


class Price(RecipeModel):
    input_per_mtok: float = Field(ge=0.0, description="USD per 1M prompt tokens")
    output_per_mtok: float = Field(ge=0.0, description="USD per 1M completion tokens")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


class PriceTable(RecipeModel):
    currency: str = "USD"
    models: dict[str, Price] = Field(description="model name or glob (e.g. tandem-*) -> price")

    def price_of(self, model: str) -> Price | None:
        if model in self.models:
            return self.models[model]
        return next((p for pattern, p in self.models.items() if fnmatch.fnmatchcase(model, pattern)), None)


def load_prices(path: Path) -> PriceTable:
    return load_config(PriceTable, path)


def route_costs(rows: list[dict], table: PriceTable) -> dict[str, dict]:
    """Per route actually taken: tokens and cost (None where the table has no price)."""
    routes: dict[str, dict] = {}
    for row in rows:
        route = row["route"].get("route") or row["model"]
        entry = routes.setdefault(route, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
        entry["requests"] += 1
        entry["prompt_tokens"] += row["prompt_tokens"]
        entry["completion_tokens"] += row["completion_tokens"]
    for route, entry in routes.items():
        price = table.price_of(route)
        entry["cost"] = price.cost(entry["prompt_tokens"], entry["completion_tokens"]) if price else None
    return routes


def counterfactual_costs(rows: list[dict], table: PriceTable) -> dict[str, float]:
    """What the same tokens would have cost on each priced model (globs skipped)."""
    prompt = sum(r["prompt_tokens"] for r in rows)
    completion = sum(r["completion_tokens"] for r in rows)
    return {
        name: price.cost(prompt, completion)
        for name, price in table.models.items()
        if not any(ch in name for ch in "*?[")
    }
