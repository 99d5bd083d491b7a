"""Small chat rows the training tests write and train on (the curation schema: `messages`, ...)."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_TOPICS = ["a list", "recursion", "a prime", "the sky", "a shell loop", "JSON", "a tuple", "tea"]


def chat_rows(n: int, offset: int = 0) -> list[dict]:
    """Small multi-turn chat rows (system/user/assistant), deterministic."""
    rows = []
    for i in range(offset, offset + n):
        topic = SAMPLE_TOPICS[i % len(SAMPLE_TOPICS)]
        messages = [{"role": "user", "content": f"Explain {topic} in one sentence. ({i})"},
                    {"role": "assistant", "content": f"{topic.capitalize()} is a thing worth knowing, number {i}."}]
        if i % 3 == 0:
            messages = [{"role": "system", "content": "Be brief."}] + messages + [
                {"role": "user", "content": "Shorter?"}, {"role": "assistant", "content": f"{topic}: {i}."}]
        rows.append({"messages": messages, "source": "test", "id": f"row-{i}"})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
