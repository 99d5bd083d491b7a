"""The labelled routing data: public sources + templated prompts, split by source item; the
hand-written evaluation set; and the hand-labelled real-prompt sets (test: the headline, never
trained on; dev: selection and calibration, part of it optionally training)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from tandem.eval.splits import hash_split
from tandem.training.routing.config import RouterRecipeConfig
from tandem.training.routing.examples import RoutingExample
from tandem.training.routing.leakage import HeldOutIndex
from tandem.training.routing.sources import SOURCES
from tandem.training.routing.synthetic import generate


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


def load_real_prompts(path: str | Path, name: str, train_share: float = 0.0) -> list[RoutingExample]:
    """A hand-labelled real-prompt file as examples. `name` is "real_test" (all split "test"),
    "real_train" (all split "train") or "real_dev": a fixed `train_share` of its rows (by sha256 of
    the row id) goes to "train", the rest to "dev" (selection and calibration)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    examples = []
    for row in rows:
        bucket = int(hashlib.sha256(f"{name}:{row['id']}".encode()).hexdigest(), 16) % 1000 / 1000
        split = ("test" if name == "real_test" else "train" if name == "real_train" or bucket < train_share
                 else "dev")
        examples.append(RoutingExample(dataset=name, item_id=row["id"], text=row["prompt"], domain=row["label"],
                                       origin="real", split=split))
    return examples


def drop_near_duplicates(examples: list[RoutingExample], held_out: list[RoutingExample]
                         ) -> tuple[list[RoutingExample], int]:
    """`examples` without any text that near-duplicates a held-out prompt (tandem.training.routing.leakage),
    and how many were dropped."""
    index = HeldOutIndex({f"{ex.dataset}:{ex.item_id}": ex.text for ex in held_out})
    held_keys = {text_key(ex.text) for ex in held_out}
    kept = [ex for ex in examples if text_key(ex.text) not in held_keys and index.match(ex.text) is None]
    return kept, len(examples) - len(kept)


def routing_data(config: RouterRecipeConfig) -> tuple[list[RoutingExample], int]:
    """Everything the recipe reads, and how many public/template rows were dropped as
    near-duplicates of a held-out prompt (hand-written, real test or real dev).

    Public and template rows keep their source split; real dev rows are "train" (their
    `train_share`) or "dev"; real train rows (`real_prompts.train`) are "train"; real test and
    hand-written rows are evaluation only.
    """
    handwritten = [ex for ex in load_handwritten(config.handwritten) if ex.domain in config.domains]
    real_test = load_real_prompts(config.real_prompts.test, "real_test")
    real_dev = load_real_prompts(config.real_prompts.dev, "real_dev", config.real_prompts.train_share)
    held_out = handwritten + real_test + real_dev
    public, dropped = drop_near_duplicates(build_examples(config), held_out)
    real_train: list[RoutingExample] = []
    if config.real_prompts.train is not None:
        # Drawn with the same guard (tandem.training.routing.draw_real_train); applied again here so that an
        # edited file cannot leak a held-out prompt into training.
        real_train, leaked = drop_near_duplicates(load_real_prompts(config.real_prompts.train, "real_train"), held_out)
        dropped += leaked
        # A hand label replaces the weak (source-level) label of the same ShareGPT turn in every split.
        labelled = {text_key(ex.text) for ex in real_train}
        public = [ex for ex in public if text_key(ex.text) not in labelled]
    return public + real_train + real_dev + real_test + handwritten, dropped


def counts(examples: list[RoutingExample]) -> dict[str, dict[str, int]]:
    """{split: {domain: n}}, for the report and the log."""
    table: dict[str, Counter] = defaultdict(Counter)
    for ex in examples:
        table[ex.split][ex.domain] += 1
    return {split: dict(sorted(c.items())) for split, c in sorted(table.items())}
