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
    lines += _sizing_markdown(context)
    return "\n".join(lines) + "\n"


def _sizing_markdown(context: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    sizing = context.get("sizing") or []
    if sizing:
        types = list(dict.fromkeys(r["type"] for r in sizing))
        bases = list(dict.fromkeys(r["base"] for r in sizing))
        cell = {(r["base"], r["type"]): r for r in sizing}
        lines += ["", "## Sizing by bit width (GB; * = measured in this run, else nominal llama.cpp bpw)", "",
                  "| type | bits/weight | " + " | ".join(bases) + " |", "|---|---:|" + "---:|" * len(bases)]
        for t in types:
            row = [cell[(b, t)] for b in bases]
            bpw = "/".join(sorted({f"{r['bits_per_weight']:.2f}" + ("*" if r["measured"] else "") for r in row}))
            lines.append(f"| {t} | {bpw} | " + " | ".join(f"{r['size_gb']:.3f}" for r in row) + " |")
    ratio = next((r["size_gb_zstd"] / r["size_gb"] for r in sizing if r["size_gb_zstd"]), None)
    if ratio:
        lines += ["", f"zstd -19 --long keeps {ratio:.1%} of a quantized GGUF's bytes (measured in this run): "
                  "quantized weights are close to random bits, so zstd mostly helps downloads of f16 files."]
    for gap in context.get("plan_gap") or []:
        lines += ["", f"Plan target for {gap['base']}: {gap['target_mb']:.0f} MB = {gap['target_bits_per_weight']} "
                  f"bits/weight; the smallest llama.cpp type is {gap['smallest_llama_cpp_bpw']} bits/weight "
                  f"= {gap['smallest_llama_cpp_gb']} GB."]
    costs = context.get("cost_estimate") or []
    if costs:
        lines += ["", "## Cost estimate (CPU time scaled linearly in parameters from this run, a lower bound for "
                  "SparseGPT whose per-layer Hessian work grows with width squared; peak memory per stage)", "",
                  "| base | stage | est. CPU time | est. peak memory (GB) |", "|---|---|---:|---:|"]
        for r in costs:
            memory = "" if r["est_peak_memory_gb"] is None else f"{r['est_peak_memory_gb']:.1f}"
            lines.append(f"| {r['base']} | {r['stage']} | {r['est_seconds_cpu'] / 3600:.2f} h | {memory} |")
    return lines


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
