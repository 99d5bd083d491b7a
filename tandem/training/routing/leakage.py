"""Near-duplicates between the router's training data and the prompts it is evaluated on.

The hand-labelled real-prompt sets are drawn from ShareGPT, which is also a training source, and
ShareGPT repeats many first turns with small edits ("I want you to act as a Linux terminal ..."
appears dozens of times). An exact-text check is therefore not enough: a training row counts as
the same prompt as a held-out one when the Jaccard similarity of their word-3-gram sets reaches
`threshold`. MinHash LSH (datasketch) finds the candidates, at a lower similarity than the
threshold so that its estimation error does not lose true matches; the exact Jaccard decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from datasketch import MinHash, MinHashLSH

NGRAM = 3
THRESHOLD = 0.5
LSH_SLACK = 0.2  # candidates from an estimated Jaccard this far below the threshold
_WORD = re.compile(r"[a-z0-9]+")


def shingles(text: str, n: int = NGRAM) -> set[str]:
    """Lower-cased word n-grams of `text`; a text shorter than n words is one shingle."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class HeldOutIndex:
    """The held-out prompts, queryable for "is this text a near-duplicate of one of them?"."""

    def __init__(self, texts: dict[str, str], threshold: float = THRESHOLD, num_perm: int = 128):
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingles = {key: shingles(text) for key, text in texts.items()}
        self.lsh = MinHashLSH(threshold=max(threshold - LSH_SLACK, 0.05), num_perm=num_perm)
        for key, grams in self.shingles.items():
            self.lsh.insert(key, self._minhash(grams))

    def _minhash(self, grams: set[str]) -> MinHash:
        minhash = MinHash(num_perm=self.num_perm)
        minhash.update_batch([g.encode() for g in grams])
        return minhash

    def match(self, text: str) -> str | None:
        """The key of a held-out prompt `text` near-duplicates, else None."""
        grams = shingles(text)
        for key in self.lsh.query(self._minhash(grams)):
            if jaccard(grams, self.shingles[key]) >= self.threshold:
                return key
        return None

    def matches(self, texts: Iterable[str]) -> list[str | None]:
        return [self.match(text) for text in texts]
