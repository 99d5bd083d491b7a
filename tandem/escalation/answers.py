"""An answer of the local route to one benchmark item, as the label collector records it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Answer(BaseModel):
    text: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    completion_tokens: int = 0
