"""Chat messages -> prompt tokens with the model's own chat template, and tool calls back out.

The GGUF's `tokenizer.chat_template` is rendered with llama-cpp-python's Jinja2 formatter (the
same sandboxed renderer transformers uses). GGUFs without a template get ChatML. Small bases rarely
have tool-calling templates, so when a request carries `tools` and the template ignores them, the
tools are described in a system message and the model is asked to answer with a JSON call, which
`parse_tool_calls` turns back into OpenAI `tool_calls`.
"""

from __future__ import annotations

import json
import re
import uuid
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


class ChatPrompter:
    def __init__(self, metadata: dict[str, str], bos_token: str, eos_token: str):
        self.template = metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        self.template_handles_tools = "tools" in self.template
        self._formatter = Jinja2ChatFormatter(template=self.template, eos_token=eos_token, bos_token=bos_token)

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        messages = [self._plain(m) for m in messages]
        if tools and not self.template_handles_tools:
            described = json.dumps([t.get("function", t) for t in tools], indent=1)
            messages = [{"role": "system", "content": TOOLS_INSTRUCTION.format(tools=described)}, *messages]
        return self._formatter(messages=messages, tools=tools).prompt

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
