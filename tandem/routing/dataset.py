"""The labelled routing data: public sources + templated prompts, split by source item, and the
hand-written evaluation set."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from tandem.eval.splits import hash_split
from tandem.routing.config import RouterRecipeConfig
from tandem.routing.examples import RoutingExample
from tandem.routing.sources import SOURCES
from tandem.routing.synthetic import generate


def _sample(examples: list[RoutingExample], limit: int | None, source: str) -> list[RoutingExample]:
    """A fixed sample of whole source items (ordered by sha256 of the item id)."""
    if limit is None:
        return examples
    by_item: dict[str, list[RoutingExample]] = defaultdict(list)
    for ex in examples:
        by_item[ex.item_id].append(ex)
    keep = sorted(by_item, key=lambda i: hashlib.sha256(f"{source}:{i}".encode()).hexdigest())[:limit]
    return [ex for i in keep for ex in by_item[i]]


def text_key(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def deduplicate(examples: list[RoutingExample]) -> list[RoutingExample]:
    """One example per text. A text labelled two ways is dropped; a text in two splits is kept only
    in the latest of train < dev < test, so nothing evaluated was trained on."""
    groups: dict[str, list[RoutingExample]] = defaultdict(list)
    for ex in examples:
        groups[text_key(ex.text)].append(ex)
    order = {"train": 0, "dev": 1, "test": 2}
    kept = []
    for group in groups.values():
        if len({ex.domain for ex in group}) == 1:
            kept.append(max(group, key=lambda ex: order[ex.split]))
    return kept


def build_examples(config: RouterRecipeConfig) -> list[RoutingExample]:
    examples: list[RoutingExample] = []
    for name, spec in config.sources.items():
        examples += _sample(list(SOURCES[name](spec.domain)), spec.limit, name)
    for ex in generate(config.domains, config.templates.per_template, config.seed, config.templates.path):
        examples.append(ex.model_copy(update={"split": hash_split(ex.dataset, ex.item_id)}))
    return deduplicate(examples)


def load_handwritten(path: str | Path) -> list[RoutingExample]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [RoutingExample(dataset="handwritten", item_id=str(i), text=row["prompt"], domain=row["domain"],
                           origin="handwritten", split="test") for i, row in enumerate(rows)]


def counts(examples: list[RoutingExample]) -> dict[str, dict[str, int]]:
    """{split: {domain: n}}, for the report and the log."""
    table: dict[str, Counter] = defaultdict(Counter)
    for ex in examples:
        table[ex.split][ex.domain] += 1
    return {split: dict(sorted(c.items())) for split, c in sorted(table.items())}
