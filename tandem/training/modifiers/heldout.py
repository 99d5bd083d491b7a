"""Held-out loss of the served base and of the served base + adapter (assistant tokens only).

Measured on what `tandem up` serves: the base GGUF and the exported LoRA GGUF, in llama.cpp,
which also makes it ~10x faster than a float torch forward on a CPU. Rows come from the domain's
benchmark test split (never trained on) and are tokenized exactly as the SFT recipe tokenizes
training rows (`tokenize_rows`, HF tokenizer; the GGUF carries the same vocabulary), so "loss went
down" compares like with like: the same tokens, the same assistant-token mask, for both models.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tandem.training.chat_data import IGNORE_INDEX, tokenize_rows
from tandem.training.modifiers.gate import paired_loss_difference


def _row_nll(llm, ids: list[int], labels: list[int]) -> tuple[float, int]:
    llm.reset()
    llm.eval(ids)
    targets = np.asarray(labels[1:])
    keep = targets != IGNORE_INDEX
    # Only assistant positions are scored: converting just those rows (not every prompt position's
    # 49k-wide logits) to float64 is most of this function's time on long prompts.
    rows = np.asarray(llm.scores[: len(ids) - 1][keep], dtype=np.float64)
    log_z = rows.max(axis=1) + np.log(np.exp(rows - rows.max(axis=1, keepdims=True)).sum(axis=1))
    return float((log_z - rows[np.arange(len(rows)), targets[keep]]).sum()), int(keep.sum())


def _mean_token_loss(llm, rows: list[dict[str, list[int]]], desc: str) -> dict[str, Any]:
    """Mean per-token loss, plus each row's summed loss and token count (for paired intervals)."""
    row_nll, row_tokens = [], []
    for row in tqdm(rows, desc=desc, unit="row", leave=False):
        nll, n = _row_nll(llm, row["input_ids"], row["labels"])
        row_nll.append(nll)
        row_tokens.append(n)
    tokens = sum(row_tokens)
    mean = sum(row_nll) / max(tokens, 1)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": tokens, "rows": len(rows),
            "row_nll": row_nll, "row_tokens": row_tokens}


def heldout_losses(base_gguf: str | Path, adapter_gguf: str | Path, tokenizer_dir: str | Path,
                   rows: list[dict[str, Any]], max_seq_len: int, threads: int | None = None,
                   reference_adapter: str | Path | None = None, lora_scale: float = 1.0) -> dict[str, dict]:
    """{"base": {...}, "modifier": {...}, "difference": {...}}: mean per-token loss on `rows`
    (`{"messages": [...]}`) for each, and modifier - base with a paired bootstrap interval.
    `reference_adapter`: the "base" side is the base with this adapter (the version served now,
    which a retrained one must beat), not the bare base. `lora_scale`: the scale the modifier is
    applied at (its served scale)."""
    from transformers import AutoTokenizer

    from tandem.services.engine.offline import load_llama

    tokenized = tokenize_rows(AutoTokenizer.from_pretrained(tokenizer_dir), rows, max_seq_len).rows
    if not tokenized:
        raise ValueError("no held-out row survived tokenization")
    n_ctx = max(len(r["input_ids"]) for r in tokenized)
    out = {}
    reference = str(reference_adapter) if reference_adapter is not None else None
    for name, lora in (("base", reference), ("modifier", str(adapter_gguf))):
        scale = {"lora_scale": lora_scale} if name == "modifier" and lora_scale != 1.0 else {}
        llm = load_llama(str(base_gguf), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, lora_path=lora,
                         n_threads=threads, **scale)
        try:
            out[name] = _mean_token_loss(llm, tokenized, f"held-out loss ({name})")
        finally:
            llm.close()
    out["difference"] = paired_loss_difference(out["base"].pop("row_nll"), out["modifier"].pop("row_nll"),
                                               out["base"].pop("row_tokens"))
    out["modifier"].pop("row_tokens")
    return out
