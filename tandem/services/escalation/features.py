"""Features of a prompt (for the difficulty model) and of an answer (for answer confidence).

Cheap on purpose: they run on every request, with numpy and jsonschema only (no torch at serving).
A prompt gives dense text statistics, the offered functions, the keyword router's domain
probabilities, and hashed word unigrams and bigrams. An answer gives statistics of its token
log-probabilities and checks of its structure against the request: cut off at max_tokens, a tool
call that names no offered function or whose arguments fail that function's JSON schema, text
where a call was due, Python that does not parse, several option letters stated. Those catch
failures that fluent, confident tokens hide.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
import re

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, UnknownType

from tandem.common.answer_confidence import sequence_features
from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.routing.keywords import KeywordRouter

HASH_DIMS = 4096
WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
DENSE_NAMES = ["log_chars", "log_words", "digit_frac", "numbers", "lines", "questions", "math_symbols",
               "has_code", "has_options", "has_tools", "upper_frac", "log_tools", "log_required_args"]
LOGPROB_NAMES = ["mean_logprob", "min_logprob", "frac_below_minus_2", "log_tokens", "first_logprob"]
STRUCTURE_NAMES = ["truncated", "tool_call_made", "tool_call_invalid", "text_instead_of_call", "code_unparsable",
                   "letters_stated"]
ANSWER_NAMES = LOGPROB_NAMES + STRUCTURE_NAMES
_FENCED_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)
_OPTIONS = re.compile(r"^\s*[A-D][.)] ", re.MULTILINE)
_LETTER = re.compile(r"(?<![A-Za-z])\(?([A-J])[.):](?=\s)")
_KEYWORDS = KeywordRouter()
ROUTER_NAMES = [f"p_{d}" for d in _KEYWORDS.domains]


def _dense(text: str, offered: dict[str, dict]) -> list[float]:
    chars = max(1, len(text))
    return [math.log1p(len(text)), math.log1p(len(text.split())), sum(c.isdigit() for c in text) / chars,
            math.log1p(len(re.findall(r"\d+(?:\.\d+)?", text))), math.log1p(text.count("\n")),
            float(text.count("?")), math.log1p(len(re.findall(r"[=+\-*/^<>]", text))),
            float("```" in text or "def " in text), float(bool(_OPTIONS.search(text))),
            float(bool(offered)), sum(c.isupper() for c in text) / chars, math.log1p(len(offered)),
            math.log1p(sum(len(schema.get("required") or []) for schema in offered.values()))]


def _hashed(text: str) -> np.ndarray:
    words = WORD.findall(text.lower())
    vector = np.zeros(HASH_DIMS, dtype=np.float32)
    for gram in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
        vector[int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little") % HASH_DIMS] = 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def prompt_features(request: ChatCompletionRequest) -> tuple[np.ndarray, np.ndarray]:
    """(dense features incl. router probabilities, hashed n-grams) of the request's prompt."""
    text = "\n".join(m.text() for m in request.messages if m.role in ("user", "system", "developer"))
    probs = _KEYWORDS.route(request).probabilities
    dense = _dense(text, _offered_functions(request)) + [probs[d] for d in _KEYWORDS.domains]
    return np.asarray(dense, dtype=np.float64), _hashed(text)


def _call_is_valid(call: dict, offered: dict[str, dict]) -> bool:
    """The call names an offered function and its arguments validate against that function's schema."""
    function = call.get("function") or {}
    if function.get("name") not in offered:
        return False
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except json.JSONDecodeError:
        return False
    if not isinstance(arguments, dict):
        return False
    try:
        return Draft202012Validator(offered[function["name"]]).is_valid(arguments)
    except (SchemaError, UnknownType):  # the client's schema is broken: only the name could be checked
        return True


def _offered_functions(request: ChatCompletionRequest) -> dict[str, dict]:
    """Offered function name -> its parameters' JSON schema."""
    functions = [tool.get("function") or {} for tool in request.tools or []]
    return {f.get("name"): f.get("parameters") or {} for f in functions}


def _code_unparsable(text: str) -> float:
    blocks = _FENCED_CODE.findall(text) or ([text] if text.lstrip().startswith(("def ", "import ", "class ")) else [])
    for block in blocks:
        try:
            ast.parse(block)
        except SyntaxError:
            return 1.0
    return 0.0


def answer_structure(request: ChatCompletionRequest, answer: Answer) -> list[float]:
    offered = _offered_functions(request)
    calls = answer.tool_calls
    invalid = sum(not _call_is_valid(c, offered) for c in calls) / len(calls) if calls else 0.0
    options = any(_OPTIONS.search(m.text()) for m in request.messages)
    letters = len(set(_LETTER.findall(answer.text))) if options else 0
    return [float(answer.finish_reason == "length"), float(bool(calls)), invalid,
            float(bool(offered) and not calls), _code_unparsable(answer.text), math.log1p(letters)]


_PYTHON_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)


def structure_failures(request: ChatCompletionRequest, answer: Answer) -> list[str]:
    """The structure checks a local answer fails outright, for the `answer_structure` policy: a tool
    call that names no offered function or whose arguments fail its schema; no call where the
    request forced one; a complete fenced Python block that does not parse. Softer signals (text
    where a call may have been due, a cut-off answer) are left to the fitted answer model."""
    offered = _offered_functions(request)
    failed = []
    if any(not _call_is_valid(call, offered) for call in answer.tool_calls):
        failed.append("tool_call_invalid")
    forced = request.tool_choice == "required" or isinstance(request.tool_choice, dict)
    if offered and forced and not answer.tool_calls:
        failed.append("forced_call_missing")
    for block in _PYTHON_BLOCK.findall(answer.text):
        try:
            ast.parse(block)
        except SyntaxError:
            failed.append("python_unparsable")
            break
    return failed


def answer_features(request: ChatCompletionRequest, answer: Answer) -> np.ndarray:
    """LOGPROB_NAMES + STRUCTURE_NAMES of a local answer (it must carry token log-probabilities)."""
    lp = answer.token_logprobs
    stats = sequence_features(lp)
    return np.asarray([stats["mean_logprob"], stats["min_logprob"], stats["frac_below_minus_2"],
                       math.log1p(stats["n_tokens"]), lp[0], *answer_structure(request, answer)], dtype=np.float64)
