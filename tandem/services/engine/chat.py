"""Chat messages -> prompt tokens with the model's own chat template, and tool calls back out.

The GGUF's `tokenizer.chat_template` is rendered with llama-cpp-python's Jinja2 formatter (the
same sandboxed renderer transformers uses). GGUFs without a template get ChatML. Small bases rarely
have tool-calling templates, so when a request carries `tools` and the template ignores them, the
tools are described in a system message and the model is asked to answer with a JSON call, which
`parse_tool_calls` turns back into OpenAI `tool_calls`.

Control tokens come only from the template. Message text (user, tool, system: whatever a client
sent) is rendered as a placeholder, and `ChatPrompt` keeps the template's own text apart from the
messages' text, so the engine (prompt_tokens.py) takes control tokens from the template's parts
only and reads the messages as plain text: a user who writes `<|im_start|>system` gets those
characters, not a forged turn. A
template that transforms message content (e.g. `| trim`) sees the placeholder instead, so the
content goes in verbatim.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TOOLS_INSTRUCTION = (
    "You can call these functions:\n{tools}\n"
    "To call a function, reply with only a JSON object such as "
    '{{"name": "function_name", "arguments": {{"arg": "value"}}}}; '
    "to call several, reply with a JSON list of such objects."
)


@dataclass(frozen=True)
class PromptPart:
    text: str
    trusted: bool  # the template's own text (control tokens parsed), else message text (plain text)


@dataclass(frozen=True)
class ChatPrompt:
    """A rendered chat prompt, in the order the model reads it."""

    parts: tuple[PromptPart, ...]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts)


class ChatPrompter:
    def __init__(self, metadata: dict[str, str], bos_token: str, eos_token: str):
        self.template = metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        self.template_handles_tools = "tools" in self.template
        self._formatter = Jinja2ChatFormatter(template=self.template, eos_token=eos_token, bos_token=bos_token)

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> ChatPrompt:
        messages = [self._plain(m) for m in messages]
        if tools and not self.template_handles_tools:
            described = json.dumps([t.get("function", t) for t in tools], indent=1)
            messages = [{"role": "system", "content": TOOLS_INSTRUCTION.format(tools=described)}, *messages]
        # A fresh nonce per render: no client text can guess (and so fake) a placeholder.
        nonce = uuid.uuid4().hex
        contents = [m["content"] for m in messages]
        placeholders = [{**m, "content": f"\x00{nonce}:{i}\x00"} for i, m in enumerate(messages)]
        rendered = self._formatter(messages=placeholders, tools=tools).prompt
        parts: list[PromptPart] = []
        for i, piece in enumerate(re.split(f"\x00{nonce}:(\\d+)\x00", rendered)):
            if i % 2 == 0:
                if piece:
                    parts.append(PromptPart(piece, trusted=True))
            elif contents[int(piece)]:
                parts.append(PromptPart(contents[int(piece)], trusted=False))
        return ChatPrompt(tuple(parts))

    @staticmethod
    def _plain(message: dict[str, Any]) -> dict[str, Any]:
        """Templates expect string content; tool results and calls become readable text."""
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
        if content is None and message.get("tool_calls"):
            content = json.dumps([c.get("function", c) for c in message["tool_calls"]])
        role = message["role"]
        if role == "developer":
            role = "system"
        if role in ("tool", "function"):
            role = "user"
            content = f"Function result: {content}"
        return {"role": role, "content": content or ""}


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_tool_calls(text: str) -> list[dict[str, Any]] | None:
    """OpenAI `tool_calls` from a model answer holding a JSON call (or list of calls), else None."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text.strip()]
    for raw in candidates:
        raw = raw.strip()
        if raw.startswith("<tool_call>"):
            raw = raw.removeprefix("<tool_call>").removesuffix("</tool_call>").strip()
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        calls = value if isinstance(value, list) else [value]
        if calls and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
            return [{
                "id": f"call_{uuid.uuid4().hex[:16]}",
                "type": "function",
                "function": {"name": c["name"],
                             "arguments": json.dumps(c.get("arguments", c.get("parameters", {})))},
            } for c in calls]
    return None
