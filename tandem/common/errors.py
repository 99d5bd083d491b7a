"""OpenAI-shaped errors, produced in one place for every service.

Every error body is `{"error": {"message", "type", "param", "code"}}`, as OpenAI clients expect.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send


class TandemError(Exception):
    """An error that maps to an HTTP status and an OpenAI error body."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.message, self.error_type, self.param, self.code)


class InvalidRequestError(TandemError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthError(InvalidRequestError):
    code = "context_length_exceeded"


class NotFoundError(TandemError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class AuthenticationError(TandemError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class RateLimitError(TandemError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class OverloadedError(TandemError):
    """No capacity now: the queue is full or no worker can take the request."""

    status_code = 503
    error_type = "overloaded_error"
    code = "overloaded"


class UpstreamTimeoutError(TandemError):
    status_code = 504
    error_type = "timeout_error"
    code = "upstream_timeout"


class UpstreamError(TandemError):
    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"


class PayloadTooLargeError(TandemError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class InternalServerError(TandemError):
    """A bug or an unexpected fault: the message names the request id that the log holds."""

    code = "internal_error"


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


async def send_error(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    """Answer an OpenAI error straight from ASGI middleware (before any route ran)."""
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _union_tag(part: object) -> bool:
    """pydantic names the union member in an error's location ('str', 'list[ContentPart]')."""
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "list", "dict"})


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request.", None
    # A value that fits no member of a union fails once per member; a validator's own message
    # (e.g. "image parts are not supported") says more than "should be a valid string".
    first = next((e for e in errors if e.get("type") == "value_error"), errors[0])
    loc = [str(p) for p in first.get("loc", ()) if p != "body" and not _union_tag(p)]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return f"Malformed JSON body: {first.get('msg')}.", None
    return f"Invalid value for '{param}': {first.get('msg')}." if param else str(first.get("msg")), param


def install_error_handlers(app: FastAPI) -> None:
    """Make every error leaving `app` an OpenAI error body."""

    @app.exception_handler(TandemError)
    async def _tandem_error(_: Request, exc: TandemError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param, "invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

