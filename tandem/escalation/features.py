"""Features of a prompt (for the difficulty model) and of an answer (for answer confidence).

Cheap on purpose: they run on every request before generation, with numpy only (no torch at
serving). A prompt gives dense text statistics, the keyword router's domain probabilities, and
hashed word unigrams and bigrams; an answer gives statistics of its token log-probabilities.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np

from tandem.calibration.answer_confidence import sequence_features
from tandem.common.wire import ChatCompletionRequest
from tandem.routing.keywords import KeywordRouter

HASH_DIMS = 4096
WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
DENSE_NAMES = ["log_chars", "log_words", "digit_frac", "numbers", "lines", "questions", "math_symbols",
               "has_code", "has_options", "has_tools", "upper_frac"]
ANSWER_NAMES = ["mean_logprob", "min_logprob", "frac_below_minus_2", "log_tokens", "first_logprob"]
_KEYWORDS = KeywordRouter()
ROUTER_NAMES = [f"p_{d}" for d in _KEYWORDS.domains]


def _dense(text: str, has_tools: bool) -> list[float]:
    chars = max(1, len(text))
    return [math.log1p(len(text)), math.log1p(len(text.split())), sum(c.isdigit() for c in text) / chars,
            math.log1p(len(re.findall(r"\d+(?:\.\d+)?", text))), math.log1p(text.count("\n")),
            float(text.count("?")), math.log1p(len(re.findall(r"[=+\-*/^<>]", text))),
            float("```" in text or "def " in text), float(bool(re.search(r"^\s*[A-D][.)] ", text, re.M))),
            float(has_tools), sum(c.isupper() for c in text) / chars]


def _hashed(text: str) -> np.ndarray:
    words = WORD.findall(text.lower())
    vector = np.zeros(HASH_DIMS, dtype=np.float32)
    for gram in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
        vector[int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little") % HASH_DIMS] = 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def prompt_features(request: ChatCompletionRequest) -> tuple[np.ndarray, np.ndarray]:
    """(dense features incl. router probabilities, hashed n-grams) of the request's prompt."""
    text = "\n".join(m.text() for m in request.messages if m.role in ("user", "system", "developer"))
    probs = _KEYWORDS.route(request).probabilities
    dense = _dense(text, bool(request.tools)) + [probs[d] for d in _KEYWORDS.domains]
    return np.asarray(dense, dtype=np.float64), _hashed(text)


def answer_features(token_logprobs: list[float]) -> np.ndarray:
    stats = sequence_features(token_logprobs)
    return np.asarray([stats["mean_logprob"], stats["min_logprob"], stats["frac_below_minus_2"],
                       math.log1p(stats["n_tokens"]), token_logprobs[0]], dtype=np.float64)
