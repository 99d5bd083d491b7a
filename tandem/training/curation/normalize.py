"""Text normalization and the text views of a conversation that filters and dedup look at."""

from __future__ import annotations

import re
import unicodedata

from tandem.training.curation.formats import Messages

# Control characters other than newline and tab, and zero-width characters.
_DROP = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127, 0x200B, 0x200C, 0x200D, 0xFEFF]}
_BLANK_RUNS = re.compile(r"\n{3,}")
_WORDS = re.compile(r"\w+")


def normalize_text(text: str) -> str:
    """NFC, unified newlines, no control characters, at most one blank line in a row, stripped.

    Indentation inside lines is kept: code depends on it. Lone surrogates (JSON allows "\ud83d"
    alone; scraped chat data has them) become U+FFFD, or writing UTF-8 would fail.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").translate(_DROP)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def normalize_messages(messages: Messages) -> Messages:
    return [{"role": m["role"], "content": normalize_text(m["content"])} for m in messages]


def dialogue_text(messages: Messages) -> str:
    """User and assistant text (system prompts repeat across datasets and would inflate similarity)."""
    return "\n".join(m["content"] for m in messages if m["role"] in ("user", "assistant"))


def exact_key(text: str) -> str:
    """What exact dedup compares: case and whitespace do not make a record new."""
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def shingles(text: str, n: int, tokens: list[str] | None = None) -> list[str]:
    """Word n-grams; a text shorter than n words is one shingle. Pass `tokens` if already split."""
    tokens = words(text) if tokens is None else tokens
    if len(tokens) <= n:
        return [" ".join(tokens)] if tokens else []
    return [" ".join(gram) for gram in zip(*(tokens[i:] for i in range(n)), strict=False)]
