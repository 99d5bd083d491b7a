"""Code from a chat reply, assembled into a test program for HumanEval or MBPP.

Models answer with fenced blocks, several blocks, a bare function, or only a function body.
We take the block that defines the function under test (else the first block, else the whole
reply) and, for HumanEval, put the original prompt first so its imports and a body-only
completion still work; a full definition in the reply simply replaces the prompt's stub.
"""

from __future__ import annotations

import re

FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str, entry_point: str | None = None) -> str:
    blocks = [b for b in FENCE.findall(reply) if b.strip()]
    if entry_point:
        defining = [b for b in blocks if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", b)]
        if defining:
            return defining[0]
    if blocks:
        return blocks[0]
    return reply.replace("```", "")


def humaneval_program(reply: str, gold: dict) -> str:
    code = extract_code(reply, gold["entry_point"])
    check = f"\n\n{gold['test']}\n\ncheck({gold['entry_point']})\n"
    if re.search(rf"def\s+{re.escape(gold['entry_point'])}\s*\(", code):
        return f"{gold['prompt']}\n\n{code}{check}"
    body = code if code.startswith((" ", "\t")) else _indent(code)
    return f"{gold['prompt']}{body}{check}"


def mbpp_code(reply: str, gold: dict) -> str:
    """The code of `reply` that MBPP's tests run: the block defining the function the first test calls."""
    name = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\()?\s*([A-Za-z_]\w*)\s*\(", gold["tests"][0])
    return extract_code(reply, name.group(1) if name else None)


def mbpp_program(reply: str, gold: dict) -> str:
    tests = "\n".join(gold["tests"])
    return f"{gold.get('setup') or ''}\n{mbpp_code(reply, gold)}\n\n{tests}\n"


def _indent(code: str) -> str:
    return "".join(f"    {line}" if line.strip() else line for line in code.splitlines(keepends=True))
