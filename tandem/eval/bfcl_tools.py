"""BFCL function docs as OpenAI `tools`, and BFCL's own AST checker for the calls a model makes.

We send tools the way BFCL's OpenAI function-calling handler does (`convert_to_tool` with
`ModelStyle.OPENAI_COMPLETIONS`): dots in names become underscores (OpenAI names must match
`^[a-zA-Z0-9_-]{1,64}$`) and Gorilla types map to JSON-schema types. That module imports
tree-sitter parsers for Java/JS we do not need, so the conversion is restated here (python
categories only). Scoring calls BFCL's `ast_checker` itself; see `check_calls`.
"""

from __future__ import annotations

import copy
import sys
import types
from typing import Any

from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI


def _cast_types(properties: dict[str, Any]) -> dict[str, Any]:
    for spec in properties.values():
        gorilla_type = spec.get("type", "string")
        if gorilla_type == "float":
            spec["format"] = "float"
        spec["type"] = GORILLA_TO_OPENAPI.get(gorilla_type, "string")
        if "properties" in spec:
            spec["properties"] = _cast_types(spec["properties"])
        items = spec.get("items")
        if isinstance(items, dict):
            items["type"] = GORILLA_TO_OPENAPI.get(items.get("type", "string"), "string")
            if "properties" in items:
                items["properties"] = _cast_types(items["properties"])
            if isinstance(items.get("items"), dict):
                items["items"]["type"] = GORILLA_TO_OPENAPI.get(
                    items["items"].get("type", "string"), "string"
                )
    return properties


def to_openai_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tools = []
    for function in copy.deepcopy(functions):
        function["name"] = function["name"].replace(".", "_")
        function["parameters"]["type"] = "object"
        function["parameters"]["properties"] = _cast_types(function["parameters"].get("properties", {}))
        tools.append({"type": "function", "function": function})
    return tools


def _install_model_config_shim() -> None:
    """`ast_checker` imports BFCL's model registry (every vendor SDK) only to ask whether a model's
    tool names had dots turned into underscores. Ours always do, so answer that without the SDKs."""
    name = "bfcl_eval.constants.model_config"
    if name in sys.modules:
        return

    class _Underscored(dict):
        def __missing__(self, key: str) -> types.SimpleNamespace:
            return types.SimpleNamespace(underscore_to_dot=True)

    shim = types.ModuleType(name)
    shim.MODEL_CONFIG_MAPPING = _Underscored()  # type: ignore[attr-defined]
    sys.modules[name] = shim


def check_calls(
    functions: list[dict], calls: list[dict[str, dict]], possible_answer: list[dict], category: str
) -> tuple[bool, str]:
    """BFCL's AST match of `calls` ([{name: {arg: value}}], names as the model sent them)."""
    _install_model_config_shim()
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

    result = ast_checker(functions, calls, possible_answer, Language.PYTHON, category, "tandem")
    return bool(result["valid"]), "; ".join(map(str, result.get("error", [])))
