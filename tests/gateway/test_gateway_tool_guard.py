"""The tool-fit guard (services/router/tool_guard.py) against a real router process: a modifier's tool
call whose function sits far from the request, or whose argument values the request does not supply,
is replaced by the base's answer; a fitting call is passed on. The worker is a scripted HTTP server (a real adapter that calls the wrong function is
9.8 MB and not in git); the router, its manifest and the packaged MiniLM are the real ones."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tandem.common.manifest import Manifest
from tests.conftest import free_port, wait_for
from tests.fallback.servers import stop_process
from tests.gateway.servers import BrokenServer

WEATHER = {"type": "function", "function": {"name": "get_current_weather", "description":
           "Get the current weather in a given city.", "parameters": {"type": "object", "properties": {
               "city": {"type": "string"}}, "required": ["city"]}}}
TRIANGLE = {"type": "function", "function": {"name": "calculate_triangle_area", "description":
            "Calculate the area of a triangle from its base and height.", "parameters": {"type": "object",
            "properties": {"base": {"type": "number"}, "height": {"type": "number"}}}}}


class ScriptedWorker(BrokenServer):
    """tandem-automation calls the first offered function with "Boston" for every parameter; tandem-base
    answers in text."""

    def __init__(self):
        super().__init__(b"", models=("tandem-base", "tandem-automation"))
        self.asked: list[str] = []

    def _app(self) -> Starlette:
        app = super()._app()

        async def chat(request: Request) -> Response:
            body = await request.json()
            self.asked.append(body["model"])
            message = {"role": "assistant", "content": "None of these functions fits."}
            if body["model"] == "tandem-automation":
                fn = body["tools"][0]["function"]
                arguments = json.dumps({p: "Boston" for p in fn["parameters"]["properties"]})
                message = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": fn["name"], "arguments": arguments}}]}
            return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})

        app.router.routes = [r for r in app.router.routes if "chat" not in r.path] + [
            Route("/v1/chat/completions", chat, methods=["POST"])]
        return app


@pytest.fixture(scope="module")
def guarded_router(tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("guarded")
    (artifacts / "modifiers").mkdir()
    (artifacts / "modifiers" / "automation.gguf").write_bytes(b"adapter")
    Manifest(artifacts).record("automation", "modifier", ["modifiers/automation.gguf"], tool_fit_min_similarity=0.3,
                                 tool_args_min_grounding=0.5)
    with ScriptedWorker() as worker:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tandem.services.router", "--port", str(port), "--settings",
                                 json.dumps({"workers": [{"name": "workers", "url": worker.url}],
                                             "artifacts_dir": str(artifacts), "cache": {"enabled": False}}),
                                 "--log-level", "warning"])
        try:
            wait_for(f"http://127.0.0.1:{port}/ready", proc=proc, timeout=60)
            yield f"http://127.0.0.1:{port}", worker
        finally:
            stop_process(proc)


def _ask(url: str, text: str, tool: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
        "model": "tandem-automation", "messages": [{"role": "user", "content": text}], "tools": [tool]})


def test_a_call_to_a_function_far_from_the_request_is_answered_by_the_base(guarded_router):
    url, worker = guarded_router
    before = len(worker.asked)
    response = _ask(url, "What's the weather like in Boston today?", TRIANGLE)
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert not message.get("tool_calls") and message["content"] == "None of these functions fits."
    assert response.headers["x-tandem-route"] == "tandem-base"
    assert float(response.headers["x-tandem-tool-guard"]) < 0.3
    assert float(response.headers["x-tandem-tool-guard-grounding"]) == 1.0  # "Boston" is in the request
    assert worker.asked[before:] == ["tandem-automation", "tandem-base"]


def test_a_call_with_made_up_arguments_is_answered_by_the_base(guarded_router):
    url, worker = guarded_router
    before = len(worker.asked)
    response = _ask(url, "What's the weather like in Paris today?", WEATHER)  # the right function, "Boston" made up
    assert response.status_code == 200, response.text
    assert not response.json()["choices"][0]["message"].get("tool_calls")
    assert response.headers["x-tandem-route"] == "tandem-base"
    assert float(response.headers["x-tandem-tool-guard-grounding"]) == 0.0
    assert float(response.headers["x-tandem-tool-guard"]) >= 0.3  # the cosine alone would have passed it
    assert worker.asked[before:] == ["tandem-automation", "tandem-base"]


def test_a_fitting_call_is_passed_on(guarded_router):
    url, worker = guarded_router
    before = len(worker.asked)
    response = _ask(url, "What's the weather like in Boston today?", WEATHER)
    assert response.status_code == 200, response.text
    [call] = response.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_current_weather"
    assert response.headers["x-tandem-route"] == "tandem-automation" and "x-tandem-tool-guard" not in response.headers
    assert worker.asked[before:] == ["tandem-automation"]


def test_answers_without_a_call_and_unguarded_models_are_untouched(guarded_router):
    url, worker = guarded_router
    before = len(worker.asked)
    response = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
        "model": "tandem-base", "messages": [{"role": "user", "content": "Area of a triangle?"}], "tools": [WEATHER]})
    assert response.status_code == 200 and "x-tandem-tool-guard" not in response.headers
    assert worker.asked[before:] == ["tandem-base"]
