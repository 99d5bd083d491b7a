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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    field_validator,
    model_validator,
)


def _integral(value: Any) -> Any:
    """JSON's 5.0 is the integer 5 (JSON Schema agrees); `true` and "5" stay what they are: refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# What the OpenAPI document promises: an integer is a JSON integer, a number a JSON number (an
# integer too), never a boolean or a numeric string, which pydantic's lax mode would coerce.
def json_int(**bounds: int) -> Any:
    """An integer (bounds as in `Field`: ge, le...), the bounds inside so the schema shows them."""
    return Annotated[int, Strict(), Field(**bounds), BeforeValidator(_integral)]


JsonNumber = Annotated[float, Strict()]
StopSequence = Annotated[str, Field(min_length=1)]
TOOL_CHOICES = ("none", "auto", "required")
TOOL_CHOICE_SCHEMA = {"anyOf": [
    {"type": "string", "enum": list(TOOL_CHOICES)},
    {"type": "object", "required": ["type", "function"], "properties": {
        "type": {"const": "function"},
        "function": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}]}
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
RESPONSE_FORMAT_SCHEMA = {"anyOf": [
    {"type": "object", "required": ["type"], "properties": {"type": {"enum": ["text", "json_object"]}}},
    {"type": "object", "required": ["type", "json_schema"], "properties": {
        "type": {"const": "json_schema"},
        "json_schema": {"type": "object", "properties": {"schema": {"type": "object"}}}}}]}


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
    include_usage: bool = Field(default=False, strict=True)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, examples=["auto", "tandem-base"])
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: json_int(ge=1) | None = None
    max_completion_tokens: json_int(ge=1) | None = None
    temperature: Annotated[JsonNumber, Field(ge=0.0, le=2.0)] = 1.0
    top_p: Annotated[JsonNumber, Field(gt=0.0, le=1.0)] = 1.0
    seed: json_int() | None = None
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=4)] | None = None
    n: json_int(ge=1, le=1) = Field(default=1, description="Only n=1 is supported.")
    stream: bool = Field(default=False, strict=True)
    stream_options: StreamOptions | None = None
    logprobs: bool = Field(default=False, strict=True)
    top_logprobs: json_int(ge=0, le=20) | None = None
    presence_penalty: Annotated[JsonNumber, Field(ge=-2.0, le=2.0)] = 0.0
    frequency_penalty: Annotated[JsonNumber, Field(ge=-2.0, le=2.0)] = 0.0
    tools: list[dict[str, Any]] | None = None
    tool_choice: Annotated[str | dict[str, Any], WithJsonSchema(TOOL_CHOICE_SCHEMA)] | None = None
    # text, json_object or json_schema (workers enforce them)
    response_format: Annotated[dict[str, Any], WithJsonSchema(RESPONSE_FORMAT_SCHEMA)] | None = None

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice_shape(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        """The shape here (what the schema says); whether the named tool was offered, in the worker."""
        function = value.get("function") if isinstance(value, dict) else None
        if isinstance(value, str) and value not in TOOL_CHOICES or isinstance(value, dict) and not (
                value.get("type") == "function" and isinstance(function, dict)
                and isinstance(function.get("name"), str)):
            raise ValueError("tool_choice must be 'none', 'auto', 'required' or "
                             "{'type': 'function', 'function': {'name': ...}}")
        return value

    @field_validator("response_format")
    @classmethod
    def _response_format_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if value.get("type") not in RESPONSE_FORMATS:
            raise ValueError(f"response_format type must be one of {', '.join(RESPONSE_FORMATS)}")
        spec = value.get("json_schema")
        if value["type"] == "json_schema" and not (isinstance(spec, dict) and isinstance(spec.get("schema", {}), dict)):
            raise ValueError("response_format json_schema needs a 'json_schema' object (its 'schema' the JSON schema)")
        return value

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
    version: str | None = None  # workers: sha256 of the base (+ adapter) serving it; the cache keys by it


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"
