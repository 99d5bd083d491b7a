"""Read-only endpoints the playground's live panel and per-answer facts read (behind the router's auth).

No `from __future__ import annotations` here: FastAPI must resolve the `limit` bound (a closure value)
when the route is declared."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from tandem.common.prices import Price, load_prices
from tandem.services.fallback.settings import DEFAULT_PRICES
from tandem.services.router.recent import RecentResponse, RecentRoutes


class PricesResponse(BaseModel):
    currency: str
    source: str = Field(description="Where the prices come from.")
    models: dict[str, Price] = Field(description="Fallback model -> USD per 1M tokens.")


def playground_api(recent: RecentRoutes) -> APIRouter:
    api = APIRouter()
    table = load_prices(DEFAULT_PRICES)

    @api.get("/v1/recent")
    async def recent_decisions(limit: Annotated[int, Query(ge=1, le=recent.capacity)] = 20) -> RecentResponse:
        """The last `limit` routing decisions (newest first) and totals since the router started."""
        return recent.snapshot(limit)

    @api.get("/v1/prices")
    async def prices(request: Request) -> PricesResponse:
        """List prices of the fallback models, so a page can state what a fallback answer cost
        (usage x price, the fallback's own default table; a fallback configured with other prices
        bills by those)."""
        gate_models = request.app.state.router.gate.models
        priced = {model: price for model in gate_models if (price := table.price_of(model)) is not None}
        return PricesResponse(currency=table.currency, source="configs/eval/prices.yaml", models=priced)

    return api
