"""The router's OpenAPI document, made to say what the server does.

FastAPI documents a 200 and a 422 per route. The router never answers 422 (validation errors are
OpenAI's 400), and it does answer 400/401/404/413/429/503/504 in OpenAI's error shape, and
chat completions stream as `text/event-stream`. This rewrites the generated document once:
every /v1 and /admin operation lists the statuses the gateway can give it and their error body, and
operations whose handler returns a bare `Response` get their real 200 bodies. A client generator
or a fuzzer (the CI fuzz test runs schemathesis against it) then sees the true contract.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from tandem.common.legacy_wire import CompletionResponse
from tandem.common.wire import ChatCompletionResponse


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error body: every non-2xx answer of every Tandem service."""

    error: ErrorDetail = Field(description="What went wrong; `code` is stable, `message` is for people.")


ERRORS: dict[int, str] = {
    400: "Malformed JSON, an invalid or unsupported parameter, or a prompt longer than the context window.",
    401: "Missing or invalid API key (when the router has keys); on /admin, the internal token.",
    403: "Cache administration is off (the router has no internal token).",
    404: "Unknown model or request id.",
    409: "Feedback of this kind was already counted for this request.",
    413: "Request body over the router's limit (declared or streamed).",
    429: "Rate limit reached (per API key, or per client address without keys); see Retry-After.",
    500: "An unexpected failure; the message names the request id the server's log holds.",
    502: "A worker or the fallback answered something unusable.",
    503: "No worker can take the request now (queue full, worker down); see Retry-After.",
    504: "The worker did not answer in time.",
}
ALWAYS = (400, 401, 413, 429, 500)
BY_OPERATION: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/v1/chat/completions"): (404, 502, 503, 504),
    ("post", "/v1/completions"): (404, 502, 503, 504),
    ("get", "/v1/models/{model_id}"): (404,),
    ("post", "/v1/feedback"): (404, 409),
    ("get", "/admin/cache/entries"): (403, 503),
    ("delete", "/admin/cache/entries/{key}"): (403, 503),
    ("post", "/admin/reload"): (403, 502),
}
STREAMING = {("post", "/v1/chat/completions"): ChatCompletionResponse,
             ("post", "/v1/completions"): CompletionResponse}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": ERRORS[status],
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    if status in (429, 503):
        response["headers"] = RETRY_AFTER
    return response


def _domains_enum(components: dict[str, Any], domains: list[str]) -> None:
    """Feedback names a domain of this deployment (settings, not code): the schema lists them."""
    feedback = components.get("FeedbackRequest")
    if feedback is None:
        return
    feedback["properties"]["correct_domain"] = {"anyOf": [{"enum": domains}, {"type": "null"}], "default": None}
    for option in feedback.get("anyOf", []):
        if "correct_domain" in option.get("properties", {}):
            option["properties"]["correct_domain"] = {"enum": domains}


def router_openapi(app: FastAPI, domains: list[str]) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                         description="Tandem's OpenAI-compatible gateway.")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorDetail"] = ErrorDetail.model_json_schema()
    components["ErrorResponse"] = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components["ErrorResponse"].pop("$defs", None)
    _domains_enum(components, domains)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path == "/ready":
                responses["503"] = {"description": "Not ready yet: a worker is not answering.",
                                    "content": {"application/json": {"schema": {"type": "object"}}}}
            if not path.startswith(("/v1/", "/admin/")):
                continue
            for status in (*ALWAYS, *BY_OPERATION.get((method, path), ())):
                responses[str(status)] = _error_response(status)
            model = STREAMING.get((method, path))
            if model is not None:
                components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in components[model.__name__].pop("$defs", {}).items():
                    components.setdefault(name, definition)
                responses["200"] = {"description": "The completion; with `stream: true`, server-sent events of "
                                    "its chunks ending in `data: [DONE]`.",
                                    "content": {"application/json": {"schema": {
                                        "$ref": f"#/components/schemas/{model.__name__}"}},
                                                # each event's data: a JSON chunk, an error object, or "[DONE]"
                                                "text/event-stream": {"schema": {
                                                    "anyOf": [{"type": "object"}, {"type": "string"}]}}}}
    return schema


def install_openapi(app: FastAPI, domains: list[str]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = router_openapi(app, domains)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
