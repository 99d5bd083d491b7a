"""Results cache: the endpoint's answer per (model identity, suite, item, prompt, sampling).

Answers, not scores, are cached, so improving a scorer never needs new generations. The key
hashes the exact request (prompt and tools included), so changing a prompt template is a miss.
SQLite (stdlib) keeps concurrent runs safe.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from tandem.eval.client import Exchange
from tandem.eval.datasets import EvalItem
from tandem.eval.settings import Sampling


def cache_key(identity: str, item: EvalItem, sampling: Sampling) -> str:
    payload = {
        "identity": identity,
        "suite": item.suite,
        "id": item.id,
        "messages": item.messages,
        "tools": item.tools,
        "sampling": sampling.model_dump(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class ResultCache:
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(folder / "results.sqlite3", timeout=30)
        self.db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, exchange TEXT NOT NULL)")
        self.db.commit()

    def get(self, key: str) -> Exchange | None:
        row = self.db.execute("SELECT exchange FROM answers WHERE key = ?", (key,)).fetchone()
        return Exchange.model_validate_json(row[0]) if row else None

    def put(self, key: str, exchange: Exchange) -> None:
        if exchange.error is None:
            self.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, exchange.model_dump_json()))
            self.db.commit()

    def close(self) -> None:
        self.db.close()
