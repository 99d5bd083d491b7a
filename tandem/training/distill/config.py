"""The distillation recipe: teacher, budget, how many tasks per category, checks and dedup."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tandem.common.prices import Price
from tandem.common.recipe_config import RecipeModel
from tandem.training.curation.config import NearDedupConfig


class TeacherConfig(RecipeModel):
    base_url: str = Field(default="https://api.openai.com/v1", description="Any OpenAI-compatible endpoint.")
    model: str = "gpt-4o"
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Environment variable holding the key.")
    temperature: float = Field(default=0.8, ge=0.0, le=2.0, description="For writing tasks (diversity).")
    answer_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=1024, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(
        default=4, ge=0, description="Retries on 429, 5xx and connection errors (backoff)."
    )
    concurrency: int = Field(default=8, ge=1, description="Requests in flight.")


class BudgetConfig(RecipeModel):
    max_usd: float | None = Field(
        default=10.0, ge=0.0, description="Stop before spending more; None: no cap."
    )
    max_tokens: int | None = Field(default=2_000_000, ge=0, description="Prompt + completion tokens cap.")
    price: Price | None = Field(default=None, description="Teacher price; default: configs/eval/prices.yaml.")


class DistillConfig(RecipeModel):
    failures: Path = Field(description="failures.json from `tandem analyze failures`.")
    out_dir: Path = Path("distilled")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    tasks_per_category: int = Field(default=40, ge=1, description="New tasks asked for per category.")
    tasks_per_request: int = Field(default=10, ge=1)
    examples_per_request: int = Field(default=3, ge=1, description="Category examples shown to the teacher.")
    training_data: list[Path] = Field(
        default_factory=list, description="Chat JSONL (e.g. curated.jsonl) new tasks must not repeat."
    )
    dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    check_answers: bool = Field(default=True, description="Run the category's checker where one exists.")
    cache: Path | None = Field(
        default=None, description="Response cache (SQLite); default out_dir/cache.sqlite."
    )

    def cache_path(self) -> Path:
        return self.cache or self.out_dir / "cache.sqlite"
