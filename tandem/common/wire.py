"""OpenAI chat-completions wire types shared by the router, workers and fallback.

Requests are validated strictly on the fields Tandem acts on and pass unknown fields through
(OpenAI clients send extras such as `user` or `metadata`). Strictly means what the OpenAPI document
says is what the server takes: numbers are numbers (`false` is not a penalty), every constraint
the server enforces is a schema constraint (non-empty stop sequences), and what OpenAI accepts but
Tandem cannot serve (image parts, n > 1) is refused with a 400 that says so.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

StopSequence = Annotated[str, Field(min_length=1)]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"] = Field(description="Only text parts: Tandem's models read text.")
    text: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type") not in (None, "text"):
            raise ValueError(f"content parts of type '{value.get('type')}' are not supported: Tandem's models "
                             "read text only")
        return value

class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, with content parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, strict=True)
    max_completion_tokens: int | None = Field(default=None, ge=1, strict=True)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0, strict=True)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, strict=True)
    seed: int | None = Field(default=None, strict=True)
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=4)] | None = None
    n: int = Field(default=1, ge=1, le=1, strict=True, description="Only n=1 is supported.")
    stream: bool = Field(default=False, strict=True)
    stream_options: StreamOptions | None = None
    logprobs: bool = Field(default=False, strict=True)
    top_logprobs: int | None = Field(default=None, ge=0, le=20, strict=True)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0, strict=True)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0, strict=True)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    response_format: dict[str, Any] | None = None  # text, json_object or json_schema (workers enforce them)
    @field_validator("stop")
    @classmethod
    def _stops_as_list(cls, value: str | list[str] | None) -> list[str] | None:
        return [value] if isinstance(value, str) else value

    def token_limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def is_deterministic(self) -> bool:
        return self.temperature == 0.0 or self.seed is not None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None = "stop"
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(default_factory=lambda: new_completion_id())
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None

    tool_calls: list[dict[str, Any]] | None = None  # OpenAI's shape: each with its `index`

class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tandem"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"
