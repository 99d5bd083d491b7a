"""Exact and near-duplicate removal, keeping the first occurrence.

Near duplicates: rensa MinHash signatures over word n-gram shingles, candidates from rensa's LSH
index, then a check of the estimated Jaccard similarity against the threshold (band collisions
alone over-report). Records are offered in input order and only kept records enter the index,
so which copy survives never depends on timing or hash order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import rensa

from tandem.training.curation.config import NearDedupConfig
from tandem.training.curation.normalize import shingles


def exact_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


class ExactDeduplicator:
    """Digests of kept records (~100 bytes each) and which kept record each belongs to.

    Only kept records are remembered: an exact copy of a record that was itself removed as a near
    duplicate goes on to near dedup and is matched to the record that was kept."""

    def __init__(self) -> None:
        self.owner: dict[bytes, int] = {}

    def owner_of(self, digest: bytes) -> int | None:
        return self.owner.get(digest)

    def add(self, digest: bytes, index: int) -> None:
        self.owner.setdefault(digest, index)


def minhashes(
    texts: Iterable[str], config: NearDedupConfig, tokens: Iterable[list[str]] | None = None
) -> list[rensa.RMinHash | None]:
    """One signature per text (None for a text without words), built in bulk by rensa.

    `tokens`: each text's words (`normalize.words`) when the caller has them already."""
    texts = list(texts)
    token_lists = list(tokens) if tokens is not None else [None] * len(texts)
    token_sets = [shingles(t, config.ngram, w) for t, w in zip(texts, token_lists, strict=True)]
    present = [i for i, tokens in enumerate(token_sets) if tokens]
    built = rensa.RMinHash.from_token_sets([token_sets[i] for i in present], config.num_perm, config.seed)
    result: list[rensa.RMinHash | None] = [None] * len(token_sets)
    for i, mh in zip(present, built, strict=True):
        result[i] = mh
    return result


class NearDuplicateIndex:
    """Keeps a record unless an earlier kept record is at least `threshold` similar (estimated Jaccard)."""

    def __init__(self, config: NearDedupConfig):
        self.threshold = config.threshold
        self.lsh = rensa.RMinHashLSH(config.threshold, config.num_perm, config.num_bands)
        self.kept: list[rensa.RMinHash] = []

    def add(self, minhash: rensa.RMinHash) -> tuple[int, float] | None:
        """None if the record is new (now indexed), else (index of the kept record it repeats, similarity)."""
        best: tuple[int, float] | None = None
        for key in self.lsh.query(minhash):
            similarity = minhash.jaccard(self.kept[key])
            if similarity >= self.threshold and (best is None or (similarity, -key) > (best[1], -best[0])):
                best = (key, similarity)
        if best is not None:
            return best
        self.lsh.insert(len(self.kept), minhash)
        self.kept.append(minhash)
        return None
