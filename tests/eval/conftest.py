"""Shared helpers: gold-derived replies, so scorer and runner tests use the benchmarks' own answers."""

import json

import pytest

from tandem.eval.datasets import EvalItem
from tandem.eval.sources import raw_items


def _first_value(values):
    return next((v for v in values if v != ""), None)


def gold_reply(item: EvalItem) -> dict:
    """A correct assistant message for `item`: {"content": str, "tool_calls": list | None}."""
    if item.suite in ("humaneval", "mbpp"):
        row = next(r for r in raw_items(item.dataset) if r["id"] == item.id)
        code = row["prompt"] + row["canonical_solution"] if item.suite == "humaneval" else row["code"]
        return {"content": f"Here is the solution.\n```python\n{code}\n```", "tool_calls": None}
    if item.suite == "gsm8k":
        return {"content": f"Let me compute.\nThe answer is {item.gold}.", "tool_calls": None}
    if item.suite in ("math", "math500"):
        return {"content": f"Working... so the result is $\\boxed{{{item.gold}}}$.", "tool_calls": None}
    if item.suite == "bfcl":
        if "irrelevance" in item.meta["category"]:
            return {"content": "None of the functions can answer that.", "tool_calls": None}
        calls = []
        for i, call in enumerate(item.gold):
            ((name, args),) = call.items()
            arguments = {k: _first_value(v) for k, v in args.items() if _first_value(v) is not None}
            calls.append(
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": name.replace(".", "_"), "arguments": json.dumps(arguments)},
                }
            )
        return {"content": None, "tool_calls": calls}
    return {"content": f"Answer: {item.gold}", "tool_calls": None}


@pytest.fixture
def gold_reply_for():
    return gold_reply


class OracleUpstream:
    """A real OpenAI-compatible HTTP server answering every known prompt with its gold reply."""

    def __init__(self, items: list[EvalItem], route_domains: dict[str, str]):
        self.replies = {self.key(it.messages): gold_reply(it) for it in items}
        self.route_domains = route_domains
        self.chat_requests = 0

    @staticmethod
    def key(messages: list[dict]) -> str:
        return json.dumps(messages, sort_keys=True)

    def app(self):
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.chat_requests += 1
            reply = self.replies.get(
                self.key(body["messages"]), {"content": "I don't know.", "tool_calls": None}
            )
            message = {"role": "assistant", "content": reply["content"], "tool_calls": reply["tool_calls"]}
            finish = "tool_calls" if reply["tool_calls"] else "stop"
            completion = {
                "id": "chatcmpl-oracle",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
            return JSONResponse(
                completion,
                headers={
                    "x-tandem-route": "tandem-base",
                    "x-tandem-domain": "general",
                    "x-tandem-escalated": "false",
                },
            )

        @app.post("/v1/route")
        async def route(request: Request):
            body = await request.json()
            text = body["messages"][-1]["content"]
            domain = self.route_domains.get(text, "general")
            return {
                "domain": domain,
                "confidence": 0.9,
                "probabilities": {domain: 0.9},
                "escalate": False,
                "reason": "oracle",
            }

        return app


@pytest.fixture
def oracle_server():
    """Start an OracleUpstream for the given items on a free port; yields a starter function."""
    import socket
    import threading
    import time

    import uvicorn

    servers = []

    def start_server(items: list[EvalItem], route_domains: dict[str, str] | None = None):
        oracle = OracleUpstream(items, route_domains or {})
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(oracle.app(), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        servers.append((server, thread))
        return oracle, f"http://127.0.0.1:{port}/v1"

    yield start_server
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
