"""Tool-calling rows as the plain chat text the serving engine shows the model and parses back.

Small bases have no tool-calling chat template, so the worker (`tandem.services.engine.chat.ChatPrompter`)
describes the tools in a system message placed first and asks for a JSON call
(`{"name": ..., "arguments": {...}}`, or a JSON list of them for several calls), which
`tandem.services.engine.chat.parse_tool_calls` turns back into OpenAI `tool_calls`. The automation
modifier is trained on exactly that text: same instruction (`TOOLS_INSTRUCTION`), same tool JSON,
and an answer that the worker's parser accepts. That is the `{"name", "arguments"}` shape BFCL's
AST checker scores after the eval harness reads `tool_calls`.
"""

from __future__ import annotations

import json
from typing import Any

from tandem.services.engine.offline import TOOLS_INSTRUCTION


def tools_system_message(tools: list[dict[str, Any]]) -> dict[str, str]:
    described = json.dumps([t.get("function", t) for t in tools], indent=1)
    return {"role": "system", "content": TOOLS_INSTRUCTION.format(tools=described)}


def tool_calls_text(tool_calls: list[dict[str, Any]]) -> str:
    """One JSON object for one call, a JSON list for several (what the worker's parser accepts)."""
    calls = []
    for call in tool_calls:
        arguments = call["function"].get("arguments") or "{}"
        calls.append({"name": call["function"]["name"],
                      "arguments": json.loads(arguments) if isinstance(arguments, str) else arguments})
    return json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content if part.get("type") == "text")
    return content or ""


def render_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[dict[str, str]]:
    """Plain `{"role", "content"}` messages as the worker renders a request (and the answer)."""
    out = [tools_system_message(tools)] if tools else []
    for message in messages:
        role, content = message["role"], _text(message.get("content"))
        if role == "assistant" and message.get("tool_calls"):
            content = tool_calls_text(message["tool_calls"])
        elif role in ("tool", "function"):
            role, content = "user", f"Function result: {content}"
        out.append({"role": "system" if role == "developer" else role, "content": content})
    return out
