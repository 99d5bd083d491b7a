"""Output constraints a request asks for, enforced with llama.cpp grammars (as llama-server does).

- `response_format: {"type": "json_object"}`: llama.cpp's JSON grammar (any JSON object).
- `response_format: {"type": "json_schema", "json_schema": {"schema": ...}}`: a grammar made from
  the schema by llama-cpp-python's converter (the port of llama.cpp's `json_schema_to_grammar`).
- `tool_choice: "required"` or `{"type": "function", "function": {"name": ...}}`: the answer must
  be one call, `{"name": ..., "arguments": {...}}`, to one of the offered functions (or the named
  one), its arguments following that function's parameter schema. `parse_tool_calls` then turns
  it into OpenAI `tool_calls`.

What cannot be enforced is refused with a 400 rather than accepted and ignored.
"""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from tandem.common.errors import InvalidRequestError
from tandem.common.wire import ChatCompletionRequest


def output_grammar(body: ChatCompletionRequest) -> str | None:
    """The GBNF the answer must follow, or None when the request constrains nothing."""
    call = _tool_call_schema(body)
    format_grammar = _response_format_grammar(body.response_format)
    if call is not None and format_grammar is not None:
        raise InvalidRequestError("A forced tool call (tool_choice) and a response_format cannot be combined: the "
                                  "answer is either a call or formatted text.", param="response_format")
    if call is not None:
        return _from_schema(call, "tool_choice")
    return format_grammar


def _response_format_grammar(response_format: dict[str, Any] | None) -> str | None:
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_GBNF
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise InvalidRequestError("response_format.json_schema must be an object whose 'schema' is a JSON "
                                      "schema object.", param="response_format.json_schema")
        return _from_schema(spec.get("schema") or {"type": "object"}, "response_format.json_schema.schema")
    raise InvalidRequestError(f"Unsupported response_format type {kind!r}: use 'text', 'json_object' or "
                              "'json_schema'.", param="response_format.type")


def _tool_call_schema(body: ChatCompletionRequest) -> dict[str, Any] | None:
    """The JSON schema of the call `tool_choice` forces, or None when it forces none."""
    choice = body.tool_choice
    if choice is None or choice in ("auto", "none"):
        return None
    functions = {f["name"]: f for f in (t.get("function", t) for t in body.tools or []) if isinstance(f.get("name"), str)}
    if choice == "required":
        names = list(functions)
    elif isinstance(choice, dict) and choice.get("type") == "function" and \
            isinstance((choice.get("function") or {}).get("name"), str):
        names = [choice["function"]["name"]]
        if names[0] not in functions:
            raise InvalidRequestError(f"tool_choice names the function {names[0]!r}, which is not among the tools "
                                      f"offered ({', '.join(functions) or 'none'}).", param="tool_choice")
    else:
        raise InvalidRequestError("tool_choice must be 'none', 'auto', 'required' or {'type': 'function', "
                                  "'function': {'name': ...}}.", param="tool_choice")
    if not names:
        raise InvalidRequestError("tool_choice requires a tool call, but no tools were offered.", param="tool_choice")
    calls = [{"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
              "properties": {"name": {"const": name},
                             "arguments": functions[name].get("parameters") or {"type": "object"}}}
             for name in names]
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def _from_schema(schema: dict[str, Any], param: str) -> str:
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises many kinds; all mean "cannot enforce this"
        raise InvalidRequestError(f"This JSON schema cannot be enforced: {type(exc).__name__}: {exc}.",
                                  param=param) from exc
