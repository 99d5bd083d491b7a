"""On-disk response cache: every teacher reply is committed as it arrives, so a killed run that is
started again re-sends only the requests that never finished (and pays only for those)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any


def request_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL)"
        )
        self.db.commit()

    def get(self, key: str) -> tuple[str, int, int] | None:
        row = self.db.execute(
            "SELECT text, prompt_tokens, completion_tokens FROM replies WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def put(self, key: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
            (key, text, prompt_tokens, completion_tokens),
        )
        self.db.commit()

    def paid_tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens of every reply stored: what was paid for them when they came."""
        row = self.db.execute("SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                              "FROM replies").fetchone()
        return int(row[0]), int(row[1])

    def close(self) -> None:
        self.db.close()
