"""Tool calling as plain chat text, for base models whose chat template knows no tools.

The format is the Hermes / Qwen one that llama.cpp's server and most open tool-calling models
use: the tools go into the system message as JSON inside `<tools></tools>`, and each call the
assistant makes is one `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` block. It is
chosen because it is the common convention (a served Tandem modifier behaves like any other
open tool-calling model), its blocks are unambiguous to parse back into OpenAI `tool_calls`, and
the JSON object inside is the `{"name", "arguments"}` shape BFCL's checker takes.

`render_messages` turns an OpenAI-shaped conversation (with `tools` and assistant `tool_calls`)
into messages the base's template renders; `parse_tool_calls` turns generated text back into
OpenAI `tool_calls`. The serving engine must render and parse with these two functions, or a
modifier trained on them sees a different prompt at serving time than in training.
"""

from __future__ import annotations

import json
import re
from typing import Any

SYSTEM_PREAMBLE = ("You are a function calling AI model. You may call one or more of the functions "
                   "described inside <tools></tools> to answer the user. For each call, reply with a JSON "
                   "object with the function name and arguments inside <tool_call></tool_call> tags.")
_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def tools_system_prompt(tools: list[dict[str, Any]], system: str | None = None) -> str:
    functions = "\n".join(json.dumps(t.get("function", t), ensure_ascii=False) for t in tools)
    head = f"{system}\n\n" if system else ""
    return f"{head}{SYSTEM_PREAMBLE}\n<tools>\n{functions}\n</tools>"


def tool_calls_text(tool_calls: list[dict[str, Any]]) -> str:
    blocks = []
    for call in tool_calls:
        function = call["function"]
        arguments = function.get("arguments") or "{}"
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        payload = json.dumps({"name": function["name"], "arguments": parsed}, ensure_ascii=False)
        blocks.append(f"<tool_call>\n{payload}\n</tool_call>")
    return "\n".join(blocks)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content if part.get("type") == "text")


def render_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """Plain `{"role", "content"}` messages: tools in the system message, calls as tagged JSON,
    tool results as user turns wrapped in `<tool_response>` (ChatML has no tool role)."""
    out: list[dict[str, str]] = []
    rest = list(messages)
    if tools:
        system = _text(rest.pop(0)["content"]) if rest and rest[0]["role"] in ("system", "developer") else None
        out.append({"role": "system", "content": tools_system_prompt(tools, system)})
    for message in rest:
        role = message["role"]
        if role == "assistant" and message.get("tool_calls"):
            text = "\n".join(filter(None, [_text(message.get("content")), tool_calls_text(message["tool_calls"])]))
            out.append({"role": "assistant", "content": text})
        elif role in ("tool", "function"):
            out.append({"role": "user", "content": f"<tool_response>\n{_text(message.get('content'))}\n</tool_response>"})
        else:
            out.append({"role": "system" if role == "developer" else role, "content": _text(message.get("content"))})
    return out


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(remaining text, OpenAI `tool_calls`) from generated text; malformed blocks stay as text."""
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    last = 0
    for match in _CALL.finditer(text):
        try:
            payload = json.loads(match.group(1))
            name, arguments = payload["name"], payload.get("arguments", {})
        except (ValueError, KeyError, TypeError):
            continue
        kept.append(text[last:match.start()])
        last = match.end()
        calls.append({"id": f"call_{len(calls)}", "type": "function",
                      "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}})
    kept.append(text[last:])
    return "".join(kept).strip(), calls
