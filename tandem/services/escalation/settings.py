"""Escalation settings, part of the router's settings (`RouterSettings.escalation`)."""

from __future__ import annotations

from pydantic import Field

from tandem.common.recipe_config import RecipeModel


class PolicySpec(RecipeModel):
    name: str = Field(description="Policy name: router_confidence, difficulty, answer_confidence.")
    threshold: float | None = Field(None, description="Escalate at this score; empty: the calibrated threshold "
                                    "from artifacts/escalation/thresholds.json.")


class EscalationSettings(RecipeModel):
    fallback_url: str | None = Field(None, description="Base URL of the fallback service; empty: no escalation, "
                                     "and no fallback models in /v1/models.")
    fallback_model: str = Field("gpt-4o", description="Fallback model that policy escalations ask for.")
    policies: list[PolicySpec] = Field(default_factory=list, description="Policies run in order; the first that "
                                       "escalates decides.")
    connect_timeout_s: float = Field(2.0, gt=0)
    request_timeout_s: float = Field(120.0, gt=0, description="Longest wait for the fallback's answer.")
    refresh_s: float = Field(10.0, gt=0, description="How often the fallback's model list is refreshed.")
