"""Semantic matches: the cached request whose prompt is most similar to this one.

The index lives in this router process (a matrix of unit vectors per request context, i.e.
model + tools + sampling parameters, which must match exactly); it maps a similar prompt to the
exact key of the answer it got, and the answer itself is read from the cache backend, so an
expired or evicted answer is simply a miss.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from tandem.cache.embedders import Embedder


class SemanticIndex:
    def __init__(self, embedder: Embedder, threshold: float, max_entries: int):
        self.embedder = embedder
        self.threshold = threshold
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[str, str, np.ndarray]] = OrderedDict()  # exact key -> (ctx, text, vec)

    def add(self, context: str, text: str, exact_key: str) -> None:
        self._entries[exact_key] = (context, text, self.embedder.embed(text))
        self._entries.move_to_end(exact_key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def nearest(self, context: str, text: str) -> tuple[str, float] | None:
        """(exact key, similarity) of the most similar prompt with the same context, if above threshold."""
        candidates = [(key, vec) for key, (ctx, _, vec) in self._entries.items() if ctx == context]
        if not candidates:
            return None
        query = self.embedder.embed(text)
        sims = np.stack([vec for _, vec in candidates]) @ query
        best = int(np.argmax(sims))
        if float(sims[best]) < self.threshold:
            return None
        return candidates[best][0], float(sims[best])
