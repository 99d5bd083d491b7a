"""Cache settings, part of the router's settings (`RouterSettings.cache`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tandem.common.recipe_config import RecipeModel
from tandem.services.cache.verify import GUARDS


class SemanticCacheSettings(RecipeModel):
    enabled: bool = Field(True, description="Answer reworded prompts from the cache when every verification guard "
                          "agrees they ask the same thing (docs/CACHE.md: the benchmark's figures at the defaults).")
    threshold: float = Field(0.995, gt=0.0, le=1.0, description="Cosine similarity needed for a semantic hit "
                             "(chosen on the benchmark's dev half, index-wide, for the default embedder).")
    view: Literal["prompt", "content"] = Field("content", description="What is embedded: the whole prompt, or its "
                                               "content words only (stopwords and request frames dropped).")
    wrappers: Literal["strip", "keep"] = Field("strip", description="strip: embed and verify the prompt without "
                                              "the wrappers around its question (\"Can you tell me ...\", "
                                              "\"Quick question:\", \"please\", \"Thanks!\"); keep: as written.")
    min_word_similarity: float = Field(0.8, ge=-1.0, le=1.0, description="The `differing` guard: the words found "
                                       "in one prompt only, when both have some, must reach this cosine "
                                       "(chosen with the threshold).")
    lexical_threshold: float | None = Field(0.5, gt=0.0, le=1.0, description="The lexical tier (docs/CACHE.md): "
                                            "a candidate below `threshold` but at or above this cosine is served "
                                            "when WordNet accounts for the words that differ (synonyms, "
                                            "derivations, a compound's definition; no antonyms) and every other "
                                            "guard passes (chosen on the benchmark's dev half). None: off.")
    lexical_senses: int = Field(1, ge=1, le=99, description="The lexical tier reads each word's first N WordNet "
                                "senses (most frequent first) for synonyms and derivations.")
    embedder: str = Field("minilm-static", description="Embedder (registry name): minilm-static (MiniLM's "
                          "per-token vectors, ~0.2 ms), minilm-int8 (MiniLM itself, a few ms), hashing (character "
                          "3-grams), or onnx (the router's MiniLM ONNX encoder from the artifacts).")
    guards: list[str] = Field(default_factory=lambda: list(GUARDS), description="Verification guards a match "
                              "must pass (tandem/services/cache/verify.py); the benchmark measures each.")
    candidates: int = Field(3, ge=1, le=32, description="Nearest prompts verified per lookup, best first.")
    max_entries: int = Field(10_000, ge=1, description="Prompts kept in the in-process similarity index.")

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: list[str]) -> list[str]:
        unknown = [g for g in value if g not in GUARDS]
        if unknown:
            raise ValueError(f"unknown guards {unknown}; known: {', '.join(GUARDS)}")
        return value


class CacheSettings(RecipeModel):
    enabled: bool = Field(True, description="Cache responses of deterministic requests.")
    backend: Literal["auto", "memory", "redis"] = Field("auto", description="auto: Redis when redis_url is set, "
                                                        "else an in-process LRU.")
    redis_url: str | None = Field(None, description="Redis URL, e.g. redis://127.0.0.1:6379/0.")
    redis_timeout_s: float = Field(0.25, gt=0, description="Socket timeout of cache calls; slower counts as down.")
    retry_after_s: float = Field(2.0, ge=0, description="After a Redis error, bypass the cache this long before "
                                 "trying Redis again (so a dead Redis costs one timeout, not one per request).")
    ttl_s: int = Field(3600, ge=1, description="Seconds an answer stays cached.")
    namespace: str = Field("default", min_length=1, description="Key prefix; a request may pick another with the "
                           "x-tandem-cache-namespace header (tenants, experiments).")
    max_entries: int = Field(10_000, ge=1, description="Entries of the in-process LRU backend.")
    include_nondeterministic: bool = Field(False, description="Also cache sampled requests (temperature > 0 and "
                                           "no seed); off: a sampled request asks for a fresh sample.")
    semantic: SemanticCacheSettings = Field(default_factory=SemanticCacheSettings)

    def resolved_backend(self) -> str:
        if self.backend == "auto":
            return "redis" if self.redis_url else "memory"
        return self.backend
