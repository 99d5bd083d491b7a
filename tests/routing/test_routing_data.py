"""Routing data: splits by source item, templates, the hand-written set, deduplication."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

from routing_helpers import small_config

from tandem.training.routing.dataset import build_examples, deduplicate, load_handwritten, text_key
from tandem.training.routing.examples import RoutingExample
from tandem.training.routing.synthetic import generate, load_templates


def test_no_source_item_is_in_two_splits_and_humaneval_is_test_only(tmp_path):
    examples = build_examples(small_config(tmp_path, per_source=60))
    splits_of = defaultdict(set)
    for ex in examples:
        splits_of[(ex.dataset, ex.item_id)].add(ex.split)
    assert all(len(s) == 1 for s in splits_of.values())
    assert {ex.split for ex in examples if ex.dataset == "humaneval"} == {"test"}
    assert {ex.domain for ex in examples} == {"code", "reasoning", "automation", "general"}
    assert all(ex.tools for ex in examples if ex.dataset == "bfcl")


def test_hand_written_set_is_large_labelled_and_never_in_training(tmp_path):
    handwritten = load_handwritten(small_config(tmp_path).handwritten)
    assert len(handwritten) >= 120
    assert min(Counter(ex.domain for ex in handwritten).values()) >= 30
    keys = {text_key(ex.text) for ex in handwritten}
    assert len(keys) == len(handwritten)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", re.sub(r"\{\w+\}", " ", text.lower())))


def test_no_template_paraphrases_a_hand_written_prompt():
    templates = [t for spec in load_templates()["domains"].values() for t in spec["templates"]]
    for ex in load_handwritten(small_config(Path("unused")).handwritten):
        prompt = _words(ex.text)
        for template in templates:
            words = _words(template)
            assert len(prompt & words) / len(prompt | words) < 0.8, (ex.text, template)


def test_templates_fill_every_slot_and_keep_a_template_in_one_split():
    examples = list(generate(["code", "automation", "nonexistent"], per_template=4, seed=1))
    assert {ex.domain for ex in examples} == {"code", "automation"}
    assert not any(re.search(r"\{\w+\}", ex.text) for ex in examples)
    assert all(ex.origin == "template" and ex.item_id.startswith("t") for ex in examples)
    per_template = Counter((ex.dataset, ex.item_id) for ex in examples)
    assert max(per_template.values()) <= 4 and len(per_template) > 60


def test_deduplicate_drops_conflicting_labels_and_keeps_the_test_copy():
    def ex(text, domain, split):
        return RoutingExample(dataset="d", item_id=text, text=text, domain=domain, split=split)

    kept = deduplicate([ex("Same words", "code", "train"), ex("same   words!", "code", "test"),
                        ex("ambiguous", "code", "train"), ex("Ambiguous", "general", "dev"), ex("solo", "general", "dev")])
    assert sorted((k.text, k.split) for k in kept) == [("same   words!", "test"), ("solo", "dev")]
