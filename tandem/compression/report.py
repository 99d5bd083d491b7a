"""The compression report: one `StageResult` per stage, as JSON, Markdown and a size-vs-quality PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tandem.common.manifest import write_json

REQUIRED_FIGURES = ("size_bytes", "bits_per_weight", "sparsity_linear", "perplexity", "arc_easy_accuracy",
                    "seconds")


class StageResult(BaseModel):
    name: str
    engine: str = Field(description="what scored it: transformers or llama.cpp")
    path: str
    size_bytes: int
    bits_per_weight: float
    n_params: int
    sparsity_linear: float
    perplexity: float
    arc_easy_accuracy: float
    seconds: float
    extra: dict[str, Any] = Field(default_factory=dict)


def write_json_report(path: Path, stages: list[StageResult], context: dict[str, Any]) -> Path:
    return write_json(path, {**context, "stages": [s.model_dump() for s in stages]})


def markdown(stages: list[StageResult], context: dict[str, Any]) -> str:
    lines = [f"# Compression report: {context.get('run_name', '')}", "",
             f"Perplexity on {context.get('heldout_tokens', '?')} held-out tokens ({context.get('heldout')}); "
             f"ARC-Easy accuracy on {context.get('arc_items', '?')} test items (log-likelihood of the options).",
             "", "| stage | engine | size (MB) | bits/weight | sparsity | perplexity | ARC-Easy | time (s) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in stages:
        lines.append(f"| {s.name} | {s.engine} | {s.size_bytes / 1e6:.1f} | {s.bits_per_weight:.2f} | "
                     f"{s.sparsity_linear:.1%} | {s.perplexity:.2f} | {s.arc_easy_accuracy:.1%} | {s.seconds:.1f} |")
    notes = [f"- **{s.name}**: {s.extra['note']}" for s in stages if s.extra.get("note")]
    if notes:
        lines += ["", "Notes:", *notes]
    calibration = context.get("calibration")
    if calibration:
        lines += ["", "## Answer-confidence calibration (ARC-Easy, final GGUF)", "",
                  f"Temperature {calibration['temperature']:.3f} fitted on {calibration['n_dev']} dev items; "
                  f"ECE on {calibration['n_test']} test items: {calibration['ece_before']:.3f} before, "
                  f"{calibration['ece_after']:.3f} after."]
    return "\n".join(lines) + "\n"


def plot(path: Path, stages: list[StageResult]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ppl, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    sizes = [s.size_bytes / 1e6 for s in stages]
    for ax, values, label in ((ax_ppl, [s.perplexity for s in stages], "perplexity (lower is better)"),
                              (ax_acc, [100 * s.arc_easy_accuracy for s in stages], "ARC-Easy accuracy (%)")):
        ax.plot(sizes, values, "o-", color="tab:blue")
        for s, x, y in zip(stages, sizes, values):
            ax.annotate(s.name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("size on disk (MB, log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle("Size vs quality per compression stage")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
