"""What the router reads from a request: the deciding text and a few cheap request features.

Shared by training and serving (numpy only), so both see exactly the same inputs. The features
carry what an embedding of the first tokens misses: whether the request brings `tools` (a strong
automation signal), code fences or inline code, and how much of it is symbols or digits.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

FEATURE_NAMES = ["tools_present", "code_fence", "inline_code", "symbol_density", "digit_density", "math_markup"]
_SYMBOLS = re.compile(r"[{}()\[\];=<>|&$#/\\_*+^~-]")
_DIGITS = re.compile(r"\d")
_MATH = re.compile(r"\$[^$]+\$|\\frac|\\sqrt|\^\d|\d\s*[-+*/×÷=]\s*\d")


def request_features(text: str, tools: list[dict[str, Any]] | None) -> np.ndarray:
    """The request features, each in [0, 1], in the order of FEATURE_NAMES."""
    n = max(len(text), 1)
    return np.array([
        1.0 if tools else 0.0,
        1.0 if "```" in text else 0.0,
        1.0 if re.search(r"`[^`\n]+`", text) else 0.0,
        min(len(_SYMBOLS.findall(text)) / n * 5.0, 1.0),
        min(len(_DIGITS.findall(text)) / n * 5.0, 1.0),
        1.0 if _MATH.search(text) else 0.0,
    ], dtype=np.float32)
