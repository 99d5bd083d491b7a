"""Quality filters: each returns the reason a conversation is dropped, or None to keep it."""

from __future__ import annotations

from tandem.training.curation.config import QualityConfig
from tandem.training.curation.formats import Messages


def turn_problem(messages: Messages) -> str | None:
    """Broken structure: no user turn, not ending with the assistant, or two turns in a row by one side."""
    dialogue = [m for m in messages if m["role"] != "system"]
    if not dialogue:
        return "empty"
    if dialogue[0]["role"] != "user":
        return "broken_turns"
    if dialogue[-1]["role"] != "assistant":
        return "broken_turns"
    previous = None
    for m in dialogue:
        if m["role"] == previous and m["role"] in ("user", "assistant"):
            return "broken_turns"
        previous = m["role"]
    return None


def quality_problem(messages: Messages, dialogue: str, config: QualityConfig) -> str | None:
    problem = turn_problem(messages)
    if problem:
        return problem
    if any(not m["content"] for m in messages if m["role"] in ("user", "assistant")):
        return "empty_turn"
    if len(messages[-1]["content"]) < config.min_response_chars:
        return "too_short"
    if len(dialogue) > config.max_chars:
        return "too_long"
    if len(dialogue.split()) < config.min_words:
        return "too_short"
    return None
