"""New tasks must not repeat the training data, the evaluation items they were modelled on, or
each other: exact and MinHash near-duplicate checks from curation, over task (prompt) text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tandem.training.curation.config import NearDedupConfig
from tandem.training.curation.dedup import ExactDeduplicator, NearDuplicateIndex, exact_digest, minhashes
from tandem.training.curation.normalize import exact_key


def training_prompts(paths: list[Path]) -> Iterator[str]:
    """The user turns of chat JSONL rows (unreadable lines are skipped)."""
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    messages = json.loads(line).get("messages") or []
                except (json.JSONDecodeError, AttributeError):
                    continue
                for m in messages:
                    if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                        yield m["content"]


class TaskDeduplicator:
    def __init__(self, config: NearDedupConfig):
        self.config = config
        self.exact = ExactDeduplicator()
        self.near = NearDuplicateIndex(config) if config.enabled else None

    def add_reference(self, texts: Iterable[str], batch: int = 5000) -> None:
        chunk: list[str] = []
        for text in [*texts, None]:
            if text is not None:
                chunk.append(text)
            if chunk and (text is None or len(chunk) >= batch):
                for t in chunk:
                    self.exact.add(exact_digest(exact_key(t)), 0)
                if self.near is not None:
                    for mh in minhashes(chunk, self.config):
                        if mh is not None:
                            self.near.add(mh)
                chunk = []

    def duplicate_reason(self, text: str) -> str | None:
        """None (and remember the task) if new, else "exact_duplicate" or "near_duplicate"."""
        digest = exact_digest(exact_key(text))
        if self.exact.owner_of(digest) is not None:
            return "exact_duplicate"
        if self.near is not None:
            mh = minhashes([text], self.config)[0]
            if mh is not None and self.near.add(mh) is not None:
                return "near_duplicate"
        self.exact.add(digest, 0)
        return None
