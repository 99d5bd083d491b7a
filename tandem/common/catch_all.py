"""The last line of defence: no failure leaves a service as a plain-text 500.

Outermost ASGI middleware. It gives each request an id (`request.state.request_id`; the router
reports it as `x-tandem-request-id`) and turns any exception no handler took into a 500 OpenAI
error naming that id, with the traceback logged under it (messages withheld, log_privacy.py).
Once a response has started (a stream) nothing can be re-sent: the failure is logged and the
connection closed, which a streaming client sees as a cut stream.
"""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.common.errors import InternalServerError, send_error
from tandem.common.log_privacy import describe_failure

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-tandem-request-id"


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:20]}"


class CatchAllMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - the point: whatever no handler took
            log.error("request %s (%s %s) failed%s:\n%s", request_id, scope["method"], scope["path"],
                      " mid-response" if started else "", describe_failure(exc))
            if started:
                return  # the server closes the unfinished response
            error = InternalServerError(f"The server failed on this request ({type(exc).__name__}); its log "
                                        f"holds the details under request id {request_id}.")
            await send_error(send, error.status_code, error.body(), {REQUEST_ID_HEADER: request_id})
