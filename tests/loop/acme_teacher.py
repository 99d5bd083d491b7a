"""A real OpenAI-compatible HTTP server playing the paid teacher of the loop test (uvicorn on a thread).

ACME's users want answers in the house format, which starts with "ACME Support:"; the small model
does not know it. The teacher writes new support questions like the failed ones, answers them in
that format, and, asked to grade an answer against its reference, says yes exactly when the answer
is in the format. Every request is logged and billed by its length (usage in each response)."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import dataclass, field

from fastapi import FastAPI, Request

from tests.distill.teacher_server import ThreadedServer

PRODUCTS = ["kettle", "toaster", "router", "blender", "vacuum", "printer", "doorbell", "thermostat", "speaker",
            "camera", "heater", "fridge", "drone", "scooter", "lamp", "projector"]
ACTIONS = ["reset", "update", "clean", "pair", "register", "descale", "unlock", "calibrate", "return", "mount"]
ASKS = ["How do I {a} my ACME {p} (model {m})?", "What is the way to {a} an ACME {p} {m}?",
        "My ACME {p} {m} needs me to {a} it. What are the steps?", "Can you tell me how to {a} the ACME {p} {m}?",
        "I bought an ACME {p}, model {m}. How can I {a} it?"]
PREFIX = "ACME Support:"


def answer_for(task: str) -> str:
    product = next((p for p in PRODUCTS if p in task.lower()), "device")
    action = next((a for a in ACTIONS if a in task.lower()), "set up")
    return f"{PREFIX} to {action} your ACME {product}, open the ACME app, choose the {product} and tap {action.title()}."


@dataclass
class TeacherState:
    requests: list[dict] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(r["kind"] == kind for r in self.requests)


def create_app(state: TeacherState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        messages = body["messages"]
        user = messages[-1]["content"]
        wanted = re.search(r"Return only a JSON array of (\d+) strings", user)
        if wanted:
            kind = "tasks"
            rng = random.Random(int(hashlib.sha256(user.encode()).hexdigest()[:12], 16))
            tasks = [rng.choice(ASKS).format(a=rng.choice(ACTIONS), p=rng.choice(PRODUCTS),
                                             m=f"{rng.choice('BKRTXZ')}{rng.randint(100, 999)}")
                     for _ in range(int(wanted.group(1)))]
            text = "```json\n" + json.dumps(tasks) + "\n```"
        elif "Answer to grade:" in user:
            kind = "judge"
            graded = user.split("Answer to grade:\n", 1)[1].split("\n\nDoes the answer", 1)[0]
            text = "yes" if graded.strip().startswith(PREFIX) else "no"
        else:
            kind = "answer"
            text = answer_for(user)
        prompt_tokens = sum(len(m["content"]) for m in messages) // 4
        completion_tokens = len(text) // 4 + 1
        state.requests.append({"kind": kind, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens})
        return {"id": f"chatcmpl-{len(state.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    return app


class AcmeTeacher(ThreadedServer):
    def __init__(self, port: int):
        self.state = TeacherState()
        super().__init__(create_app(self.state), port)
