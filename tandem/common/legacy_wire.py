"""OpenAI's legacy `/v1/completions` wire types (raw prompt in, text out), shared by router and workers.

Still what lm-eval-harness and many tools call. One prompt per request (n=1, like chat); what needs
more than generation (`echo`, `logprobs`, `suffix`, `best_of`) is refused with a 400 rather than
ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tandem.common.wire import StreamOptions, Usage

LEGACY_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    prompt: str | list[str] = Field(description="One prompt (a list holding exactly one is accepted too).")
    max_tokens: int = Field(default=LEGACY_DEFAULT_MAX_TOKENS, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only n=1 is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError("exactly one prompt per request is supported")
            value = value[0]
        if not value:
            raise ValueError("the prompt must not be empty")
        return value

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        stops = [value] if isinstance(value, str) else value
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("at most 4 non-empty stop sequences are allowed")
        return stops

    @model_validator(mode="after")
    def _supported(self) -> CompletionRequest:
        unsupported = [name for name, on in (("echo", self.echo), ("logprobs", self.logprobs is not None),
                                             ("suffix", self.suffix is not None),
                                             ("best_of", self.best_of not in (None, 1))) if on]
        if unsupported:
            raise ValueError(f"{', '.join(unsupported)} not supported on /v1/completions")
        return self

    @property
    def text(self) -> str:
        assert isinstance(self.prompt, str)  # the validator made it one string
        return self.prompt


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: Any = None
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: new_legacy_id())
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


def new_legacy_id() -> str:
    return f"cmpl-{uuid.uuid4().hex[:24]}"
