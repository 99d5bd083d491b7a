"""Typed settings of the fallback service, validated at start-up.

The API key comes from an environment variable (`api_key_env`, default OPENAI_API_KEY) or a
file (`api_key_file`, e.g. a mounted secret); it is a SecretStr, so it never appears in logs,
reprs or the settings JSON that `tandem up` passes to the process.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.common.prices import Price

DEFAULT_PRICES = Path(__file__).resolve().parents[3] / "configs" / "eval" / "prices.yaml"


class FallbackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_FALLBACK_", extra="forbid")

    service_name: str = "fallback"
    upstream_base_url: str = Field(description="OpenAI-compatible base URL, e.g. https://api.openai.com/v1.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the upstream API key.")
    api_key_file: str | None = Field(None, description="File holding the upstream API key (wins over the env).")
    model_map: dict[str, str] = Field(default_factory=lambda: {"gpt-4o": "gpt-4o"},
                                      description="Public model name -> the upstream's model name.")
    prices: dict[str, Price] = Field(default_factory=dict, description="Public model name -> USD per 1M tokens; "
                                     "models missing here are priced from configs/eval/prices.yaml.")
    daily_budget_usd: float = Field(10.0, ge=0.0, description="Spend cap per UTC day; escalation is refused "
                                     "once it is reached.")
    default_max_tokens: int = Field(1024, ge=1, description="max_tokens sent upstream when a request gives "
                                    "none: the budget reserves the cost of this many output tokens per call.")
    redis_url: str | None = Field(None, description="Redis holding the day's spend (shared by replicas); "
                                  "in-process when empty.")
    redis_timeout_s: float = Field(0.5, gt=0)
    connect_timeout_s: float = Field(3.0, gt=0, description="Timeout to connect to the upstream.")
    request_timeout_s: float = Field(60.0, gt=0, description="Timeout for the upstream's answer (504 after; "
                                     "not retried: the upstream may still be generating, and billing).")
    max_retries: int = Field(2, ge=0, description="Retries on 429, 5xx and connect errors.")
    backoff_base_s: float = Field(0.25, ge=0, description="First retry delay; doubles, with 50-150% jitter.")
    backoff_max_s: float = Field(4.0, ge=0, description="Longest retry delay (also caps Retry-After).")
    circuit_failures: int = Field(3, ge=1, description="Consecutive failed calls that open the circuit.")
    circuit_open_s: float = Field(30.0, gt=0, description="How long an open circuit refuses before one trial call.")
    max_body_bytes: int = Field(8_000_000, ge=1024, description=(
        "Largest request body accepted; above the router's 2 MB, since relaying re-encodes a body."))

    @model_validator(mode="after")
    def _check(self) -> FallbackSettings:
        if not self.model_map:
            raise ValueError("model_map must name at least one public model")
        from tandem.common.prices import load_prices
        table = load_prices(DEFAULT_PRICES)
        for model in self.model_map:
            if model not in self.prices:
                price = table.price_of(model)
                if price is None:
                    raise ValueError(f"no price for fallback model '{model}': add it to prices")
                self.prices[model] = price
        return self

    def api_key(self) -> SecretStr:
        if self.api_key_file:
            return SecretStr(Path(self.api_key_file).read_text().strip())
        return SecretStr(os.environ.get(self.api_key_env, ""))
