"""ASGI middleware that reads a request body once, within a byte limit, before any route sees it.

Content-Length alone is not a limit: a chunked body has none, so the bytes are counted as they
arrive and the request is refused with 413 the moment they pass the limit. Every route here
parses its whole body as JSON anyway, so holding it costs nothing extra.

The body is also checked for lone UTF-16 surrogates (`"\\ud800"` with no partner): JSON allows the
escape, Python's parser keeps it, and the first UTF-8 encode of that string (the tokenizer, a
cache key, the relay to a worker) fails far from the request. Refused here, it is a clear 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.common.errors import InvalidRequestError, PayloadTooLargeError, send_error

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Any escaped surrogate (a valid pair too): only then is the body parsed to look closer.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BodyTooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def _lone_surrogate_in(body: bytes) -> bool:
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return False  # malformed JSON: the route's parser answers that with its own 400
    return has_lone_surrogate(parsed)


class RequestBodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        try:
            if declared is not None and declared > self.max_body_bytes:
                raise BodyTooLarge(declared)
            body = await self._read(receive)
        except BodyTooLarge as exc:
            error = PayloadTooLargeError(f"The request body is over the limit of {self.max_body_bytes} bytes "
                                         f"(at least {exc.args[0]} sent).")
            await send_error(send, error.status_code, error.body(), {"connection": "close"})
            return
        if body is None:
            return  # the client left before sending its body
        if _lone_surrogate_in(body):
            error = InvalidRequestError("The JSON body holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                                        "escape), which is not valid Unicode text.", code="invalid_unicode")
            await send_error(send, error.status_code, error.body())
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge(size)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then the real channel (a route still learns of a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
