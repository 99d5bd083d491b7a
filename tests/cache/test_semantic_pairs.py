"""The semantic-cache benchmark's pair set: built from installed public data, deterministic, at least
500 pairs of each class, split by source item so no item is on both sides."""

from __future__ import annotations

from collections import Counter

from bench.semantic_cache.pairs import NEGATIVE_CLASSES, build


def test_pair_set_is_deterministic_and_large_enough_per_class():
    pairs = build()
    assert pairs == build()
    counts = Counter(p.kind for p in pairs)
    assert set(counts) == {"paraphrase", *NEGATIVE_CLASSES}
    assert all(n >= 500 for n in counts.values()), counts
    assert all(p.cached != p.query for p in pairs)
    sides = {}
    for p in pairs:
        sides.setdefault(p.item, set()).add(p.split)
    assert all(len(s) == 1 for s in sides.values())
    assert 0.4 < sum(p.split == "dev" for p in pairs) / len(pairs) < 0.6
    assert Counter(p.source for p in pairs if p.positive)["mrpc"] >= 150  # human-judged paraphrases
