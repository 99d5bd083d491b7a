"""LoRA adapter size from a Llama-family config: how many parameters and bytes a rank and a set
of target projections cost, so a measured adapter on the small base can be set against the
plan's 40-50 MB per modifier for an 8B base.

A LoRA pair on a `d_in -> d_out` projection adds `r * (d_in + d_out)` parameters per layer.
"""

from __future__ import annotations

from typing import Any

# Llama 3.1 8B's shape (config.json of meta-llama/Llama-3.1-8B).
LLAMA_3_1_8B: dict[str, int] = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                                "num_attention_heads": 32, "num_key_value_heads": 8}
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BYTES_PER_PARAM = {"f32": 4, "f16": 2, "bf16": 2, "q8_0": 34 / 32}


def projection_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each linear projection in one decoder layer."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv = config.get("num_key_value_heads", heads) * head_dim
    inter = config["intermediate_size"]
    return {"q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
            "o_proj": (heads * head_dim, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
            "down_proj": (inter, hidden)}


def lora_parameters(config: dict[str, Any], rank: int, targets: list[str] | tuple[str, ...]) -> int:
    shapes = projection_shapes(config)
    unknown = [t for t in targets if t not in shapes]
    if unknown:
        raise ValueError(f"unknown LoRA targets {unknown}; known: {', '.join(shapes)}")
    per_layer = sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)
    return per_layer * config["num_hidden_layers"]


def lora_bytes(config: dict[str, Any], rank: int, targets: list[str] | tuple[str, ...], dtype: str = "f16") -> int:
    return int(lora_parameters(config, rank, targets) * BYTES_PER_PARAM[dtype])
