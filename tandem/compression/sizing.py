"""Honest sizing: what each bit width gives for 135M, 1B, 3B and 8B bases, and what a run costs.

Sizes are parameters x bits per weight / 8. Bits per weight (bpw) are llama.cpp's effective
figures for Llama-shaped models (scales and mixed tensor types included); a figure measured in
this run replaces the nominal one. Times are the measured 135M run scaled linearly with
parameter count (every stage is a fixed number of passes over the weights or the calibration
tokens); memory is the peak working set each stage needs per parameter.
"""

from __future__ import annotations

BASES = {"135M": 134.5e6, "1B": 1.24e9, "3B": 3.21e9, "8B": 8.03e9}
# Nominal effective bits per weight of llama.cpp types on Llama models (llama.cpp quantize docs).
NOMINAL_BPW = {"F16": 16.0, "Q8_0": 8.5, "Q6_K": 6.56, "Q5_K_M": 5.69, "Q4_K_M": 4.89, "Q3_K_M": 3.91,
               "Q2_K": 3.35, "IQ2_XXS": 2.06, "IQ1_S": 1.56}
PLAN_TARGET_BYTES = {"8B": 520e6}
# Bytes per parameter held in memory by each stage (fp32 working copy unless noted).
MEMORY_PER_PARAM = {
    "prune": 4.0,     # fp32 weights; SparseGPT adds one Hessian (in_features^2 fp32) per layer
    "recover": 4.0 + 0.2,  # fp32 frozen weights + LoRA/optimizer; activations grow with batch x seq
    "awq": 4.0,       # fp32 weights; cached layer inputs for the scale search
    "gguf_f16": 2.0,  # convert_hf_to_gguf streams tensors; output f16
    "quantize": 2.0,  # llama-quantize mmaps the f16 file
}


def nearest_base(n_params: float) -> str | None:
    """The named base within 20% of `n_params`, if any (a measured figure applies only to it)."""
    for base, params in BASES.items():
        if abs(n_params - params) / params < 0.2:
            return base
    return None


def size_table(measured_bpw: dict[str, float] | None = None, zstd_ratio: float | None = None,
               measured_base: str | None = "135M") -> list[dict]:
    """One row per (base, type): bpw, GB, and GB after zstd (ratio measured on `measured_base`).

    `measured_bpw` replaces the nominal figure only for `measured_base`: a small model's
    embedding table is a larger share of its weights, so its bpw does not carry over."""
    rows = []
    for base, params in BASES.items():
        bpw_by_type = {**NOMINAL_BPW, **(measured_bpw or {})} if base == measured_base else NOMINAL_BPW
        for qtype, bpw in bpw_by_type.items():
            gb = params * bpw / 8 / 1e9
            rows.append({"base": base, "type": qtype, "bits_per_weight": round(bpw, 3),
                         "measured": base == measured_base and qtype in (measured_bpw or {}), "size_gb": round(gb, 3),
                         "size_gb_zstd": round(gb * zstd_ratio, 3) if zstd_ratio else None})
    return rows


def plan_gap() -> list[dict]:
    """The plan's targets as bits per weight, next to the smallest llama.cpp types."""
    return [{"base": base, "target_mb": target / 1e6, "target_bits_per_weight": round(target * 8 / BASES[base], 3),
             "smallest_llama_cpp_bpw": min(NOMINAL_BPW.values()),
             "smallest_llama_cpp_gb": round(BASES[base] * min(NOMINAL_BPW.values()) / 8 / 1e9, 3)}
            for base, target in PLAN_TARGET_BYTES.items()]


def cost_estimate(stage_seconds: dict[str, float], measured_params: float) -> list[dict]:
    """Per base and stage: seconds (linear in parameters from this run) and peak memory in GB."""
    rows = []
    for base, params in BASES.items():
        scale = params / measured_params
        for stage, seconds in stage_seconds.items():
            per_param = MEMORY_PER_PARAM.get(stage)
            rows.append({"base": base, "stage": stage, "est_seconds_cpu": round(seconds * scale, 1),
                         "est_peak_memory_gb": round(params * per_param / 1e9, 2) if per_param else None})
    return rows
