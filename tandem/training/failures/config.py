"""What `tandem analyze failures` reads and how it clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel


class FailureAnalysisConfig(RecipeModel):
    results: list[Path] = Field(
        default_factory=list, description="Eval result JSONL files, or folders of them (tandem eval --out)."
    )
    out_dir: Path = Path("failure-analysis")
    pass_score: float = Field(default=1.0, description="A row scoring below this is a failure.")
    embed_text: Literal["prompt", "prompt_response"] = Field(
        default="prompt", description="Cluster on what was asked, or on the question and the wrong answer."
    )
    k_min: int = Field(default=8, ge=2)
    k_max: int = Field(default=12, ge=2)
    top_terms: int = Field(default=5, ge=1)
    examples: int = Field(default=3, ge=1, description="Examples shown per category (closest to its centre).")
    max_chars: int = Field(default=2000, ge=100, description="Characters of each text that are embedded.")
    seed: int = 0

    @model_validator(mode="after")
    def _k_range(self) -> FailureAnalysisConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) is larger than k_max ({self.k_max})")
        return self
