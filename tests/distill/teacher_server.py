"""A real OpenAI-compatible HTTP server playing the teacher, with known right and wrong answers.

It writes tasks from templates (so which answers are right is known), answers arithmetic and
Python tasks, gets some wrong on purpose (the checks must catch them), fails the first attempt
of some requests with HTTP 500 (the client must retry), and logs every request it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

NAMES = ["Mia", "Leo", "Ava", "Noah", "Zoe", "Omar", "Ines", "Kenji", "Lena", "Raj", "Sofia", "Tom"]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "shells", "pencils", "stamps", "cards", "beads"]
OPS = [("sum", "a + b"), ("difference", "a - b"), ("product", "a * b"), ("larger", "max(a, b)")]
TRAINING_PROMPT = "What is the capital of France?"


@dataclass
class TeacherState:
    delay_s: float = 0.0
    answered: list[dict] = field(default_factory=list)
    attempts: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _rng(text: str) -> random.Random:
    return random.Random(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


def _tasks(user: str, count: int) -> list[str]:
    rng = _rng(user)
    if "numeric final answer" in user:
        tasks = []
        for _ in range(count):
            name, item = rng.choice(NAMES), rng.choice(ITEMS)
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            tasks.append(
                rng.choice(
                    [
                        f"{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?",
                        f"A box holds {a} {item}. {name} adds another {b} {item}. How many {item} are in it?",
                        f"On Monday {name} collected {a} {item}; on Tuesday {b}. How many in total?",
                    ]
                )
            )
        return tasks
    if "assert" in user:
        tasks = []
        for _ in range(count):
            k, (op, expr) = rng.randint(1, 10_000), rng.choice(OPS)
            fn = f"{op}_{k}"
            x, y = rng.randint(1, 50), rng.randint(1, 50)
            expected = eval(expr, {"a": x, "b": y})
            tasks.append(
                f"Write a Python function `{fn}(a, b)` that returns the {op} of two integers."
                f"\nassert {fn}({x}, {y}) == {expected}\nassert {fn}(0, 0) == 0"
            )
        return tasks
    cities = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Quito", "Accra", "Tbilisi", "Perth", "Bergen"]
    return [
        f"Describe one famous landmark of {rng.choice(cities)} and explain why visitors travel to it "
        f"(variant {rng.randint(1, 10**6)})."
        for _ in range(count)
    ]


def _answer(system: str, user: str, temperature: float) -> str:
    if "####" in system:
        a, b = (int(n) for n in re.findall(r"\d+", user)[:2])
        total = a + b
        if total % 5 == 0 and temperature == 0.0:
            total += 1  # a wrong first answer: the second, independent solution disagrees
        return f"We add {a} and {b}: {a} + {b} = {total}.\n#### {total}"
    if "python" in system.lower():
        fn = re.search(r"`(\w+)\(a, b\)`", user).group(1)
        op = fn.split("_")[0]
        expr = dict(OPS)[op]
        if int(fn.split("_")[1]) % 4 == 0:
            expr = "a + b + 1"  # a wrong function: its own asserts fail
        return f"```python\ndef {fn}(a, b):\n    return {expr}\n```"
    return f"Here is a short answer about: {user[:60]}"


def create_app(state: TeacherState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        messages = body["messages"]
        key = hashlib.sha256(repr((messages, body.get("temperature"))).encode()).hexdigest()
        state.attempts[key] += 1
        if int(key[:2], 16) % 5 == 0 and state.attempts[key] == 1:
            return JSONResponse({"error": {"message": "try again", "type": "server_error"}}, status_code=500)
        await asyncio.sleep(state.delay_s)
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = messages[-1]["content"]
        wanted = re.search(r"Return only a JSON array of (\d+) strings", user)
        if wanted:
            tasks = _tasks(user, int(wanted.group(1)))
            example = re.search(r"Example 1:\n(.*?)(?:\n\nExample 2:|\n\nWrite )", user, re.DOTALL)
            if "(Batch 1.)" in user and example:
                tasks[0] = example.group(1)  # a copy of an evaluation item: must be dropped
            if "(Batch 2.)" in user:
                tasks[-1] = TRAINING_PROMPT  # already in the training data: must be dropped
            text = "```json\n" + json.dumps(tasks) + "\n```"
        else:
            text = _answer(system, user, body.get("temperature", 1.0))
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        completion_tokens = len(text) // 4 + 1
        state.prompt_tokens += prompt_tokens
        state.completion_tokens += completion_tokens
        state.answered.append({"key": key, "messages": messages, "temperature": body.get("temperature")})
        return {
            "id": f"chatcmpl-{key[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    return app


class ThreadedServer:
    """Serves an ASGI app with uvicorn on a thread of this process, as a context manager; `url` is the
    OpenAI base URL."""

    def __init__(self, app, port: int):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.url = f"http://127.0.0.1:{port}/v1"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("teacher server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class TeacherServer(ThreadedServer):
    """The scripted teacher of tests/distill; its `state` counts what it was asked."""

    def __init__(self, port: int):
        self.state = TeacherState()
        super().__init__(create_app(self.state), port)
