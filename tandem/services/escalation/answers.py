"""An answer of the local route: as the label collector records it, and as the router's `after`
escalation stage judges it (the same features either way)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Answer(BaseModel):
    text: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    completion_tokens: int = 0
    finish_reason: str | None = None
    route: str | None = None

    @classmethod
    def from_choice(cls, choice: dict[str, Any], completion_tokens: int = 0, route: str | None = None) -> Answer:
        """From an OpenAI chat completion choice (a dict, as it travels on the wire)."""
        message = choice.get("message") or {}
        logprobs = (choice.get("logprobs") or {}).get("content") or []
        return cls(text=message.get("content") or "", tool_calls=message.get("tool_calls") or [],
                   token_logprobs=[t["logprob"] for t in logprobs], completion_tokens=completion_tokens,
                   finish_reason=choice.get("finish_reason"), route=route)
