"""OpenAI's legacy `/v1/completions` wire types (raw prompt in, text out), shared by router and workers.

Still what lm-eval-harness and many tools call. One prompt per request (n=1, like chat); what needs
more than generation (`echo`, `logprobs`, `suffix`, `best_of`) is refused with a 400 rather than
ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tandem.common.wire import JsonNumber, StopSequence, StreamOptions, Usage, json_int

LEGACY_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, examples=["tandem-base"])
    # The schema says what the server takes (tandem/common/wire.py says why): one non-empty prompt,
    # and the options it does not serve only at their off values.
    prompt: StopSequence | Annotated[list[StopSequence], Field(min_length=1, max_length=1)] = Field(
        description="One prompt (a list holding exactly one is accepted too).")
    max_tokens: json_int(ge=1) = LEGACY_DEFAULT_MAX_TOKENS
    temperature: Annotated[JsonNumber, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[JsonNumber, Field(gt=0.0, le=1.0)] = 1.0
    seed: json_int() | None = None
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=4)] | None = None
    n: json_int(ge=1, le=1) = Field(default=1, description="Only n=1 is supported.")
    stream: bool = Field(default=False, strict=True)
    stream_options: StreamOptions | None = None
    echo: Literal[False] = Field(default=False, description="Not supported: only false.")
    logprobs: None = Field(default=None, description="Not supported: only null.")
    suffix: None = Field(default=None, description="Not supported: only null.")
    best_of: json_int(ge=1, le=1) | None = Field(default=None, description="Not supported beyond 1.")

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

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, value: Any) -> Any:
        """A clear refusal for what OpenAI serves and Tandem does not (before the type errors)."""
        if isinstance(value, dict):
            unsupported = [name for name, on in (
                ("echo", value.get("echo") is not None and value.get("echo") is not False),
                ("logprobs", value.get("logprobs") is not None),
                ("suffix", value.get("suffix") is not None), ("best_of", value.get("best_of") not in (None, 1)))
                if on]
            if unsupported:
                raise ValueError(f"{', '.join(unsupported)} not supported on /v1/completions")
        return value

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
