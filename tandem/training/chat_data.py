"""Chat rows -> token ids with loss on assistant turns only.

Each row is `{"messages": [{"role", "content"}, ...]}`. The tokenizer's own chat template renders
the conversation; an assistant turn's span is the text between the rendering of the messages
before it (with the generation prompt) and the rendering through it, so the labels cover the
assistant's words and its end-of-turn marker, and nothing the user or system wrote. Token spans
come from the fast tokenizer's character offsets, so no template-specific markers are hard-coded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100


class ChatDataError(Exception):
    """Chat rows cannot be read or rendered."""


@dataclass
class TokenizedRows:
    rows: list[dict[str, list[int]]]
    dropped: Counter = field(default_factory=Counter)

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)

    @property
    def trained_tokens(self) -> int:
        return sum(sum(1 for t in r["labels"] if t != IGNORE_INDEX) for r in self.rows)


def read_chat_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows with a `messages` list from a JSONL file (e.g. the curation step's curated.jsonl)."""
    rows, bad = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(row, dict) and isinstance(row.get("messages"), list):
                rows.append(row)
            else:
                bad += 1
    if not rows:
        raise ChatDataError(f"{path} holds no chat rows with a 'messages' list ({bad} unreadable lines)")
    return rows


def _assistant_char_spans(tokenizer, messages: list[dict[str, str]], text: str) -> list[tuple[int, int]]:
    spans = []
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (text.startswith(before) and text.startswith(through)):
            raise ChatDataError("the chat template does not render conversations prefix by prefix; "
                                "assistant turns cannot be located for loss masking")
        spans.append((len(before), len(through)))
    return spans


def tokenize_chat(tokenizer, messages: list[dict[str, str]], max_seq_len: int) -> dict[str, list[int]]:
    """input_ids and labels (IGNORE_INDEX outside assistant turns), truncated to `max_seq_len`."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = _assistant_char_spans(tokenizer, messages, text)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = enc["input_ids"][:max_seq_len]
    labels = [IGNORE_INDEX] * len(ids)
    for k, (start, end) in enumerate(enc["offset_mapping"][: len(ids)]):
        if any(s <= start < e for s, e in spans) and end > start:
            labels[k] = ids[k]
    return {"input_ids": ids, "labels": labels}


def _message_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "no messages"
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str) or "role" not in m:
            return "malformed message"
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return "no assistant turn"
    return None


def tokenize_rows(tokenizer, rows: Iterable[dict[str, Any]], max_seq_len: int) -> TokenizedRows:
    """Tokenize chat rows; rows that cannot be trained on are counted by reason, not raised."""
    out = TokenizedRows(rows=[])
    for row in rows:
        problem = _message_problem(row.get("messages"))
        if problem:
            out.dropped[problem] += 1
            continue
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        item = tokenize_chat(tokenizer, messages, max_seq_len)
        if all(t == IGNORE_INDEX for t in item["labels"]):
            out.dropped["assistant turn truncated away"] += 1
            continue
        out.rows.append(item)
    return out
