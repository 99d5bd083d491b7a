"""Function calls from a chat reply, for BFCL scoring.

Structured `tool_calls` are used when the endpoint returns them. Servers without tool support
leave the call in the text, so we also read JSON objects (`{"name": ..., "arguments": {...}}`,
one or a list, also inside <tool_call> tags or code fences) and Python call syntax
(`get_weather(city="Paris")`, BFCL's own prompting format).

Text that only *mentions* a function is not a call: a definition (`def get_time():`, a shell
`get_time() {`), an echoed tool schema (an object with a `description`), or any JSON object with a
`name` (`{"name": "New York City", ...}`) that carries no `arguments` and names no offered tool.
Code answers are full of these, and reading them as calls failed BFCL irrelevance items that
called nothing.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

Call = dict[str, dict[str, Any]]


def calls_from_tool_calls(tool_calls: list[dict]) -> list[Call] | None:
    calls = []
    for call in tool_calls:
        function = call.get("function", call)
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except json.JSONDecodeError:
                return None
        if not isinstance(arguments, dict) or not function.get("name"):
            return None
        calls.append({function["name"]: arguments})
    return calls


def _normal(name: str) -> str:
    return name.replace(".", "_")


def _json_calls(text: str, names: set[str]) -> list[Call]:
    calls: list[Call] = []
    offered = {_normal(n) for n in names}
    decoder = json.JSONDecoder()
    i = 0
    while (opening := re.compile(r"[\[{]").search(text, i)) is not None:
        start = opening.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            i = start + 1
            continue
        for obj in value if isinstance(value, list) else [value]:
            if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or "description" in obj:
                continue
            if "arguments" in obj or "parameters" in obj or _normal(obj["name"]) in offered:
                args = obj.get("arguments", obj.get("parameters", {}))
                if isinstance(args, dict) and args.get("type") == "object" and "properties" in args:
                    continue  # a schema, not arguments
                if isinstance(args, str):
                    try:
                        args = json.loads(args)
                    except json.JSONDecodeError:
                        continue
                if isinstance(args, dict):
                    calls.append({obj["name"]: args})
        i = end
    return calls


_DEFINED_BEFORE = re.compile(r"\b(def|function|class)\s+$")
_DEFINED_AFTER = re.compile(r"\s*[:{]")


def _python_calls(text: str, names: set[str]) -> list[Call]:
    calls: list[Call] = []
    for match in re.finditer(r"([A-Za-z_][\w.]*)\s*\(", text):
        name = match.group(1)
        if name not in names and _normal(name) not in names:
            continue
        # Grow the candidate until it parses as one call expression.
        for end in range(match.end(), len(text) + 1):
            if text[end - 1] != ")":
                continue
            try:
                node = ast.parse(text[match.start() : end].strip(), mode="eval").body
            except SyntaxError:
                continue
            definition = _DEFINED_BEFORE.search(text, 0, match.start()) or _DEFINED_AFTER.match(text, end)
            if isinstance(node, ast.Call) and not node.args and not definition:
                try:
                    calls.append(
                        {
                            _normal(name): {
                                kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg
                            }
                        }
                    )
                except ValueError:
                    pass
            break
    return calls


def extract_calls(text: str, tool_calls: list[dict] | None, tool_names: set[str]) -> list[Call]:
    """Calls as [{name: {arg: value}}], names as sent in `tools` (dots replaced by underscores)."""
    if tool_calls:
        structured = calls_from_tool_calls(tool_calls)
        if structured is not None:
            return structured
    return _json_calls(text, tool_names) or _python_calls(text, tool_names)
