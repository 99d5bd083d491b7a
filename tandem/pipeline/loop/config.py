"""`tandem loop`'s recipe: which traffic, how failures are clustered, the teacher and its budget,
the check against the eval splits, the retraining, the strict gate and the promotion; and for the
domain router (`retrain: [router]`), its feedback rows, refit, gate and promotion (`router:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel
from tandem.training.curation.config import NearDedupConfig
from tandem.training.distill.config import BudgetConfig, TeacherConfig
from tandem.training.modifiers.config import TaskSlice
from tandem.training.routing.config import DATA_DIR as ROUTER_DATA
from tandem.training.sft_config import SFTConfig


class LoopTraffic(RecipeModel):
    logs: list[Path] = Field(min_length=1, description="Traffic log folders or files (router traffic_log.dir).")
    label: Literal["auto", "feedback", "escalation", "all"] = Field(
        "auto", description="How a request is scored (tandem traffic export --label).")
    since: str | None = Field(None, description="Only requests at or after this UTC time (ISO 8601 prefix).")
    domains: list[str] | None = Field(None, description="Keep requests routed to these domains for the modifier; "
                                       "null: all. The router part reads every domain.")


class LoopFailures(RecipeModel):
    pass_score: float = Field(1.0, description="A request scoring below this is a failure.")
    embed_text: Literal["prompt", "prompt_response"] = "prompt"
    k_min: int = Field(2, ge=2)
    k_max: int = Field(6, ge=2)
    top_terms: int = Field(5, ge=1)
    examples: int = Field(3, ge=1, description="Examples per category shown to the teacher.")
    min_failures: int = Field(4, ge=2, description="Fewer failed requests: nothing to learn yet; the loop stops.")


class LoopDistill(RecipeModel):
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description=(
        "Caps over everything this loop's work_dir has paid the teacher for (tasks, answers, judgements), "
        "across runs: a resumed run has only what is left."))
    tasks_per_category: int = Field(24, ge=1)
    tasks_per_request: int = Field(8, ge=1)
    examples_per_request: int = Field(3, ge=1)
    check_answers: bool = True
    dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)
    training_data: list[Path] = Field(default_factory=list, description="Chat JSONL new tasks must not repeat.")


class LoopCheck(RecipeModel):
    """New rows must not repeat an evaluation item (exact or MinHash near-duplicate of its prompt)."""

    suites: list[str] | None = Field(None, description="Eval suites checked; null: every suite tandem eval knows.")
    splits: list[str] = Field(default_factory=lambda: ["train", "dev", "test"],
                              description="Splits checked (all by default: a split's items are someone's test).")
    dedup: NearDedupConfig = Field(default_factory=NearDedupConfig)


class LoopGate(RecipeModel):
    """The modifiers' gate (tandem/training/modifiers/gate.py), against the version served now."""

    heldout_share: float = Field(0.25, gt=0, lt=1, description="Share of the new rows kept out of training "
                                 "(by id hash): the gate's held-out loss and task items.")
    min_heldout: int = Field(6, ge=2, description="Fewer held-out rows: the gate cannot decide; the loop stops.")
    min_loss_drop: float = Field(0.01, ge=0, lt=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    confidence: float = Field(0.95, gt=0, lt=1)
    heldout_max_seq_len: int = Field(512, ge=16)
    heldout_threads: int | None = Field(1, ge=1, description="llama.cpp threads for the held-out loss; 1 is "
                                        "fastest on a busy CPU (threads spin at every barrier); null: llama.cpp's choice.")
    max_tokens: int = Field(256, ge=1, description="Answer length for the task items.")
    judge_model: str | None = Field(None, description="Judges answers of tasks with no checker against the "
                                    "teacher's reference answer; default: the teacher model.")
    elsewhere: dict[str, TaskSlice] = Field(default_factory=dict, description=(
        "Benchmark slices that must not fall (one-sided McNemar p >= alpha), e.g. the domain's own task."))


class LoopPromote(RecipeModel):
    enabled: bool = Field(True, description="Write a passing candidate into artifacts_dir's manifest.")
    router_url: str | None = Field(None, description="The running stack's router: it is told to reload "
                                   "(POST /admin/reload with TANDEM_INTERNAL_TOKEN) and the promoted version is "
                                   "checked through it. null: write the manifest only (takes effect at the next "
                                   "start).")
    check_items: int | None = Field(None, ge=1, description="Held-out items asked live; null: all.")
    min_live_score: float | None = Field(None, description="Live score the promoted version must reach; "
                                         "default: its gate score minus `tolerance`.")
    tolerance: float = Field(0.2, ge=0, le=1)
    timeout_s: float = Field(600.0, gt=0, description="Per live request and per reload.")


class LoopRouter(RecipeModel):
    """The domain router retrained from feedback that names the right domain (tandem/pipeline/loop/router.py).

    Fixed before any result: the candidate is refused when it falls on the hand-labelled real dev set
    (paired, one-sided exact McNemar p < `alpha`), and unless it beats the served router on the held-out
    feedback rows (more right; with `heldout_significance`, also one-sided exact McNemar p < `alpha`)."""

    entry: str = Field("router", description="The served router's manifest entry (what the router service loads).")
    min_rows: int = Field(8, ge=2, description="Fewer distinct prompts with a corrected domain: nothing to learn; "
                          "the router part stops.")
    heldout_share: float = Field(0.3, gt=0, lt=1, description="Share of the feedback prompts kept out of "
                                 "training (by a hash of the prompt text) for the gate and the live check.")
    min_heldout: int = Field(5, ge=1, description="Fewer held-out prompts: the gate cannot decide; stop.")
    feedback_weight: float = Field(5.0, gt=0, description="Sample weight of a feedback row in the refit (the "
                                   "recipe weights its hand-labelled real dev rows 5).")
    alpha: float = Field(0.05, gt=0, lt=1)
    heldout_significance: bool = Field(True, description="The held-out gain must also reach p < alpha "
                                       "(needs at least 5 held-out prompts the served router gets wrong).")
    dev: Path = Field(ROUTER_DATA / "real_prompts_dev.jsonl", description="The gate's hand-labelled real dev set.")
    test: Path = Field(ROUTER_DATA / "real_prompts_test.jsonl",
                       description="Feedback near-duplicating one of these prompts never trains (nor does dev's).")
    handwritten: Path = Field(ROUTER_DATA / "handwritten.jsonl", description="Checked like the test set.")
    check_items: int | None = Field(None, ge=1, description="Held-out prompts routed live; null: all.")
    min_live_accuracy: float | None = Field(None, description="Live held-out accuracy the promoted router must "
                                            "reach through /v1/route; default: its gate accuracy minus `tolerance`.")
    tolerance: float = Field(0.0, ge=0, le=1)


class LoopConfig(RecipeModel):
    name: str = Field("loop", pattern=r"^[A-Za-z0-9_.-]+$")
    retrain: list[Literal["modifier", "router"]] = Field(default_factory=lambda: ["modifier"], min_length=1,
                                                         description="What this turn retrains.")
    domain: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$",
                               description="The modifier retrained: tandem-<domain> (needed with modifier).")
    artifacts_dir: Path = Field(description="The served artifacts folder (tandem up --artifacts).")
    work_dir: Path | None = Field(None, description="Everything the loop makes; default build/loop/<name>. "
                                  "Rerunning with the same work_dir resumes (teacher replies, training).")
    traffic: LoopTraffic
    failures: LoopFailures = Field(default_factory=LoopFailures)
    distill: LoopDistill = Field(default_factory=LoopDistill)
    check: LoopCheck = Field(default_factory=LoopCheck)
    replay_sources: list[str] = Field(default_factory=list, description=(
        "Modifier data sources (configs/modifiers) mixed into training so the domain keeps what it knew."))
    replay_limit_per_source: int | None = Field(None, ge=1)
    sft: SFTConfig
    gate: LoopGate = Field(default_factory=LoopGate)
    promote: LoopPromote = Field(default_factory=LoopPromote)
    router: LoopRouter = Field(default_factory=LoopRouter)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, values: Any) -> Any:
        if isinstance(values, dict):
            work = values.get("work_dir") or f"build/loop/{values.get('name', 'loop')}"
            sft = dict(values.get("sft") or {})
            sft.setdefault("output_dir", str(Path(work) / "sft"))
            sft.setdefault("base_model", "served")
            values = {**values, "work_dir": work, "sft": sft}
        return values

    @model_validator(mode="after")
    def _checks(self) -> LoopConfig:
        from tandem.training.modifiers.data import SOURCES

        unknown = [s for s in self.replay_sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown replay_sources {unknown}; known: {', '.join(SOURCES)}")
        if "modifier" in self.retrain and self.domain is None:
            raise ValueError("retrain: [modifier] needs `domain` (the modifier retrained: tandem-<domain>)")
        if self.failures.k_min > self.failures.k_max:
            raise ValueError(f"failures.k_min ({self.failures.k_min}) is larger than k_max ({self.failures.k_max})")
        return self
