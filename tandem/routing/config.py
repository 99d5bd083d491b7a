"""The router recipe's config (configs/routing/router.yaml), validated before any heavy work."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, model_validator

DATA_DIR = Path(__file__).parent / "data"


class SourceSpec(BaseModel):
    domain: str = Field(description="The domain every prompt of this source is labelled with.")
    limit: int | None = Field(default=None, ge=1, description="Keep at most this many items (a fixed sample).")


class TemplateSpec(BaseModel):
    path: Path = Field(default=DATA_DIR / "templates.yaml", description="Project-written prompt templates.")
    per_template: int = Field(default=8, ge=0, description="Distinct variants generated per template.")


class EncoderSpec(BaseModel):
    max_tokens: int = Field(default=32, ge=8, le=512, description="Prompts are cut to this many tokens.")
    quantize: bool = Field(default=True, description="int8 dynamic quantization of the ONNX encoder.")
    threads: int = Field(default=1, ge=1, le=16, description="ONNX Runtime intra-op threads when serving.")


class HeadSpec(BaseModel):
    c: float = Field(default=4.0, gt=0, description="Inverse L2 strength of the logistic-regression head.")
    token_c: float = Field(default=4.0, gt=0, description="Same, for the first-stage bag-of-tokens classifier.")
    tokens: bool = Field(default=True, description="The second-stage head also reads token presence "
                                                    "(lexical + semantic); false: embedding + features only.")
    max_iter: int = Field(default=3000, ge=10)


class CascadeSpec(BaseModel):
    enabled: bool = Field(default=True, description="Answer from the bag-of-tokens stage when it is sure.")
    min_precision: float = Field(default=0.998, gt=0.5, le=1.0,
                                 description="Its dev accuracy on the requests it answers must reach this.")


class RouterRecipeConfig(BaseModel):
    domains: list[str] = Field(min_length=2)
    default_domain: str = "general"
    sources: dict[str, SourceSpec]
    templates: TemplateSpec = TemplateSpec()
    handwritten: Path = Field(default=DATA_DIR / "handwritten.jsonl",
                              description="Hand-written evaluation prompts; never trained on.")
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
        from tandem.routing.sources import SOURCES

        problems = [f"unknown source '{s}' (known: {', '.join(sorted(SOURCES))})" for s in self.sources
                    if s not in SOURCES]
        problems += [f"source '{s}' is labelled '{spec.domain}', which is not in domains"
                     for s, spec in self.sources.items() if spec.domain not in self.domains]
        if self.default_domain not in self.domains:
            problems.append(f"default_domain '{self.default_domain}' is not in domains")
        if not self.templates.path.is_file():
            problems.append(f"templates file {self.templates.path} does not exist")
        if not self.handwritten.is_file():
            problems.append(f"hand-written set {self.handwritten} does not exist")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def output_dir(self) -> Path:
        return self.artifacts_dir / self.name
