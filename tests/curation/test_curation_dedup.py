import random

import pytest

from tandem.training.curation.config import NearDedupConfig
from tandem.training.curation.dedup import ExactDeduplicator, NearDuplicateIndex, exact_digest, minhashes
from tandem.training.curation.normalize import exact_key, shingles

VOCAB = [f"w{i}" for i in range(5000)]


def text(rng: random.Random, n: int = 120) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def jaccard(a: str, b: str, n: int = 3) -> float:
    sa, sb = set(shingles(a, n)), set(shingles(b, n))
    return len(sa & sb) / len(sa | sb)


def edit(rng: random.Random, t: str, changes: int) -> str:
    words = t.split()
    for i in rng.sample(range(len(words)), changes):
        words[i] = rng.choice(VOCAB)
    return " ".join(words)


def test_exact_dedup_ignores_case_and_whitespace():
    dedup = ExactDeduplicator()
    dedup.add(exact_digest(exact_key("Hello   World\n")), 0)
    assert dedup.owner_of(exact_digest(exact_key("hello world"))) == 0
    assert dedup.owner_of(exact_digest(exact_key("hello, world"))) is None


def test_near_duplicates_above_threshold_are_found_and_distinct_texts_kept():
    rng = random.Random(7)
    config = NearDedupConfig()
    originals = [text(rng) for _ in range(200)]
    close = [edit(rng, t, 2) for t in originals[:50]]  # ~6 of ~118 shingles change: J ~ 0.9
    far = [edit(rng, t, 25) for t in originals[50:100]]  # J well below 0.8
    assert min(jaccard(a, b) for a, b in zip(originals[:50], close, strict=True)) > 0.85
    assert max(jaccard(a, b) for a, b in zip(originals[50:100], far, strict=True)) < 0.6
    index = NearDuplicateIndex(config)
    results = [index.add(mh) for mh in minhashes(originals + close + far, config)]
    assert all(r is None for r in results[:200])
    assert [r[0] for r in results[200:250]] == list(range(50))  # each copy points at its own original
    assert all(r is None for r in results[250:])


def test_first_occurrence_is_kept_whatever_the_batch_split():
    rng = random.Random(3)
    config = NearDedupConfig()
    base = [text(rng) for _ in range(30)]
    stream = [t for b in base for t in (b, edit(rng, b, 1))]

    def kept(batch: int) -> list[int]:
        index, out = NearDuplicateIndex(config), []
        for start in range(0, len(stream), batch):
            for i, mh in enumerate(minhashes(stream[start : start + batch], config), start):
                if index.add(mh) is None:
                    out.append(i)
        return out

    assert kept(7) == kept(60) == list(range(0, 60, 2))


def test_texts_without_words_get_no_signature():
    assert minhashes(["", "!!!", "two words"], NearDedupConfig())[:2] == [None, None]


def test_bands_must_divide_permutations():
    with pytest.raises(ValueError, match="multiple"):
        NearDedupConfig(num_perm=128, num_bands=10)
