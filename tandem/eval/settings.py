"""What one `tandem eval` run needs: endpoint, suites, sampling, output. CLI flags map 1:1."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from tandem.common.model_files import cache_dir

ALL_SUITES = ["humaneval", "mbpp", "gsm8k", "math500", "arc_easy", "arc_challenge", "mmlu", "bfcl", "routing"]
# Enough for a full answer on each suite without letting a rambling small model run for minutes.
DEFAULT_MAX_TOKENS = {
    "humaneval": 512,
    "mbpp": 512,
    "gsm8k": 384,
    "math500": 512,
    "math": 512,
    "arc_easy": 64,
    "arc_challenge": 64,
    "mmlu": 64,
    "bfcl": 256,
}


class Sampling(BaseModel):
    """Sampling parameters: part of the cache key. Deterministic by default."""

    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = 0
    max_tokens: int = Field(default=512, ge=1)


class EvalSettings(BaseModel):
    base_url: str = Field(description="OpenAI-style base URL, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="`model` sent with every request (e.g. auto, tandem-code, gpt-4o)")
    api_key: str = Field(default="tandem", description="Bearer token; OPENAI_API_KEY is used when set")
    suites: list[str] = Field(default_factory=lambda: list(ALL_SUITES))
    split: str = Field(default="test", description="Which split of each dataset to evaluate")
    limit: int | None = Field(default=None, ge=1, description="Items per suite (a deterministic sample)")
    concurrency: int = Field(default=4, ge=1, le=256)
    out: Path = Field(default=Path("eval-results"))
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int | None = Field(default=None, ge=1, description="Cap on every suite's default max_tokens")
    request_timeout_s: float = Field(default=600.0, gt=0)
    artifacts: Path | None = Field(
        default=None, description="Artifacts folder whose manifest the guard reads"
    )
    allow_contaminated: bool = False
    prices: Path = Field(default=Path(__file__).resolve().parents[2] / "configs" / "eval" / "prices.yaml")
    cache_dir: Path = Field(default_factory=lambda: cache_dir() / "eval")
    use_cache: bool = True
    model_identity: str = Field(default="", description="Extra text identifying the served weights")

    def sampling(self, suite: str) -> Sampling:
        default = DEFAULT_MAX_TOKENS.get(suite, 512)
        return Sampling(
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=min(default, self.max_tokens) if self.max_tokens else default,
        )
