"""The curation recipe: which files to read and how to filter them. YAML + `key=value` overrides."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel
from tandem.training.curation.domains import DEFAULT_DOMAIN_RULES, DomainRule


class InputSpec(RecipeModel):
    path: Path
    format: str | None = Field(
        default=None, description="Force a format (see `formats.FORMATS`); else detected."
    )
    source: str | None = Field(
        default=None, description="Source name in stats and ids; default: the file stem."
    )
    limit: int | None = Field(
        default=None, ge=1, description="Read only the first N records of this file (small test runs)."
    )

    def source_name(self) -> str:
        if self.source:
            return self.source
        name = self.path.name
        for suffix in (".gz", ".jsonl", ".json", ".parquet", ".ndjson"):
            name = name.removesuffix(suffix)
        return name


class QualityConfig(RecipeModel):
    min_words: int = Field(default=3, ge=0, description="Fewest words in user + assistant text.")
    min_response_chars: int = Field(default=1, ge=0, description="Shortest final assistant answer.")
    max_chars: int = Field(default=32_000, ge=1, description="Longest conversation, in characters.")


class LanguageConfig(RecipeModel):
    keep: list[str] = Field(default_factory=lambda: ["en"], description="ISO codes to keep; empty keeps all.")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, description="Lowest fastText probability to keep.")
    sample_chars: int = Field(default=400, ge=50, description="Characters of prose given to fastText.")


class NearDedupConfig(RecipeModel):
    enabled: bool = True
    threshold: float = Field(
        default=0.8, gt=0.0, le=1.0, description="Jaccard similarity that makes a duplicate."
    )
    num_perm: int = Field(default=128, ge=16)
    num_bands: int = Field(default=16, ge=1, description="LSH bands; num_perm must be a multiple of it.")
    ngram: int = Field(default=3, ge=1, description="Word n-gram shingle size.")
    seed: int = 42

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> NearDedupConfig:
        if self.num_perm % self.num_bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of num_bands ({self.num_bands})")
        return self


class CurationConfig(RecipeModel):
    inputs: list[InputSpec] = Field(default_factory=list, description="Read in this order (first copy wins).")
    out_dir: Path
    quality: QualityConfig = Field(default_factory=QualityConfig)
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    exact_dedup: bool = True
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    domain_rules: dict[str, DomainRule] = Field(
        default_factory=lambda: {k: v.model_copy(deep=True) for k, v in DEFAULT_DOMAIN_RULES.items()},
        description="Domain -> keywords and patterns; most hits wins, ties go to the earlier domain.",
    )
    default_domain: str = "general"
    workers: int = Field(default=1, ge=1, description="Processes that parse, filter and hash records.")
    batch_size: int = Field(default=2000, ge=1)
    progress: bool = True
