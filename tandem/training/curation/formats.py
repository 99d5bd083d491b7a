"""Native instruction-data formats and their conversion to chat messages.

Each format is a `RecordFormat`: the keys that identify it and a function turning one record into
`[{"role", "content"}, ...]`. Detection picks the first format (in registry order, most specific
first) whose keys a record holds, so a file is detected from its first readable record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Messages = list[dict[str, str]]


class FormatError(ValueError):
    """A record does not fit its format (missing fields, unknown roles, wrong types)."""


@dataclass(frozen=True)
class RecordFormat:
    name: str
    keys: frozenset[str]
    convert: Callable[[dict[str, Any]], Messages]
    description: str


def _text(record: dict[str, Any], key: str, required: bool = True) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise FormatError(f"missing field '{key}'")
        return ""
    if not isinstance(value, str):
        raise FormatError(f"field '{key}' is {type(value).__name__}, not text")
    return value


def _turns(user: str, assistant: str, system: str = "") -> Messages:
    messages = [{"role": "system", "content": system}] if system.strip() else []
    return [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def _join(first: str, second: str) -> str:
    return f"{first}\n\n{second}" if second.strip() else first


def _alpaca(r: dict[str, Any]) -> Messages:
    return _turns(_join(_text(r, "instruction"), _text(r, "input", False)), _text(r, "output"))


def _dolly(r: dict[str, Any]) -> Messages:
    return _turns(_join(_text(r, "instruction"), _text(r, "context", False)), _text(r, "response"))


def _openorca(r: dict[str, Any]) -> Messages:
    return _turns(_text(r, "question"), _text(r, "response"), _text(r, "system_prompt", False))


def _metamath(r: dict[str, Any]) -> Messages:
    return _turns(_text(r, "query"), _text(r, "response"))


SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}


def _sharegpt(r: dict[str, Any]) -> Messages:
    turns = r.get("conversations")
    if not isinstance(turns, list):
        raise FormatError("'conversations' is not a list")
    messages = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise FormatError("a conversation turn is not an object")
        speaker = str(turn.get("from", "")).lower()
        if speaker not in SHAREGPT_ROLES:
            raise FormatError(f"unknown ShareGPT speaker '{speaker}'")
        messages.append({"role": SHAREGPT_ROLES[speaker], "content": _text(turn, "value")})
    return messages


def _content(value: Any) -> str:
    """OpenAI message content: a string, or a list of parts whose text parts are joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text") or "" for p in value if isinstance(p, dict) and p.get("type") == "text")
    raise FormatError(f"message content is {type(value).__name__}")


CHAT_ROLES = {"system", "developer", "user", "assistant", "tool"}


def _messages(r: dict[str, Any]) -> Messages:
    raw = r.get("messages")
    if not isinstance(raw, list):
        raise FormatError("'messages' is not a list")
    messages = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in CHAT_ROLES:
            raise FormatError(f"bad message {str(m)[:80]!r}")
        role = "system" if m["role"] == "developer" else m["role"]
        messages.append({"role": role, "content": _content(m.get("content"))})
    return messages


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def _anthropic_hh(r: dict[str, Any]) -> Messages:
    """The `chosen` transcript ("\\n\\nHuman: ...\\n\\nAssistant: ..."); `rejected` (DPO) is unused."""
    transcript = _text(r, "chosen")
    parts = _HH_TURN.split(transcript)
    if len(parts) < 3 or parts[0].strip():
        raise FormatError("'chosen' is not a Human/Assistant transcript")
    return [
        {"role": "user" if speaker == "Human" else "assistant", "content": text}
        for speaker, text in zip(parts[1::2], parts[2::2], strict=True)
    ]


# Most specific first: detection takes the first format whose keys a record holds.
FORMATS: dict[str, RecordFormat] = {
    f.name: f
    for f in [
        RecordFormat(
            "messages", frozenset({"messages"}), _messages, "OpenAI chat: messages=[{role, content}]"
        ),
        RecordFormat(
            "sharegpt",
            frozenset({"conversations"}),
            _sharegpt,
            "ShareGPT / WizardLM evol: conversations=[{from, value}]",
        ),
        RecordFormat(
            "anthropic_hh",
            frozenset({"chosen", "rejected"}),
            _anthropic_hh,
            "Anthropic-HH: chosen/rejected Human/Assistant transcripts",
        ),
        RecordFormat(
            "openorca",
            frozenset({"question", "response"}),
            _openorca,
            "OpenOrca: system_prompt, question, response",
        ),
        RecordFormat("metamath", frozenset({"query", "response"}), _metamath, "MetaMathQA: query, response"),
        RecordFormat(
            "dolly", frozenset({"instruction", "response"}), _dolly, "Dolly: instruction, context, response"
        ),
        RecordFormat(
            "alpaca",
            frozenset({"instruction", "output"}),
            _alpaca,
            "Alpaca / Alpaca-GPT4 / CodeAlpaca / WizardLM-70k: instruction, input, output",
        ),
    ]
}
# Names users know their data by; they share a key layout with a format above.
ALIASES = {
    "codealpaca": "alpaca",
    "alpaca_gpt4": "alpaca",
    "wizardlm": "alpaca",
    "wizardlm_evol": "sharegpt",
    "orca": "openorca",
    "metamathqa": "metamath",
    "hh": "anthropic_hh",
    "hh_rlhf": "anthropic_hh",
    "chat": "messages",
    "openai": "messages",
}


def get_format(name: str) -> RecordFormat:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        known = ", ".join([*FORMATS, *ALIASES])
        raise FormatError(f"unknown format '{name}'; known: {known}")
    return FORMATS[key]


def detect_format(record: Any) -> RecordFormat | None:
    if not isinstance(record, dict):
        return None
    keys = record.keys()
    for fmt in FORMATS.values():
        if fmt.keys <= keys:
            return fmt
    return None
