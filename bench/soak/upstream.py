"""The "frontier" upstream of the soak: a small OpenAI-compatible server of our own (the paid API is
the one part the project mocks). Canned answers, streamed or not, with usage; its delay can be raised
while it runs (the "slow fallback" fault) through `POST /fault/delay?seconds=S`. Its own process:
`python -m bench.soak.upstream --port P`."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

ANSWER = "A frontier answer, canned for the soak test."


def create_app() -> Starlette:
    state = {"delay_s": 0.0}

    async def chat(request: Request):
        body = await request.json()
        await asyncio.sleep(state["delay_s"])
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "created": int(time.time()), "model": body["model"]}
        usage = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
        if not body.get("stream"):
            return JSONResponse({**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]})

        def event(choices: list, **extra) -> str:
            return f"data: {json.dumps({**base, 'object': 'chat.completion.chunk', 'choices': choices, **extra})}\n\n"

        async def events():
            yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
            for word in ANSWER.split(" "):
                yield event([{"index": 0, "delta": {"content": word + " "}}])
            yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            yield event([], usage=usage)
            yield "data: [DONE]\n\n"
        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(_: Request):
        return JSONResponse({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "bench"}]})

    async def fault_delay(request: Request):
        state["delay_s"] = float(request.query_params["seconds"])
        return JSONResponse(state)

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models),
                             Route("/fault/delay", fault_delay, methods=["POST"])])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.soak.upstream")
    parser.add_argument("--port", type=int, required=True)
    uvicorn.run(create_app(), host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
