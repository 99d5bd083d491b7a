"""Held-out loss of the base and of the base + adapter on the same rows (assistant tokens only).

Rows come from the domain's benchmark test split (never trained on), tokenized exactly as the SFT
recipe tokenizes training rows, so "loss went down" compares like with like. One model in memory:
the adapter is switched off with peft's `disable_adapter()` for the base's pass.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tandem.training.chat_data import IGNORE_INDEX, tokenize_rows


def _mean_token_loss(model, rows: list[dict[str, list[int]]], desc: str) -> dict[str, float]:
    import torch

    total, tokens = 0.0, 0
    with torch.no_grad():
        for row in tqdm(rows, desc=desc, unit="row", leave=False):
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([row["labels"]])
            logits = model(input_ids=ids).logits[:, :-1]
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1),
                                                     ignore_index=IGNORE_INDEX, reduction="sum")
            total += float(loss)
            tokens += int((target != IGNORE_INDEX).sum())
    mean = total / max(tokens, 1)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": tokens, "rows": len(rows)}


def heldout_losses(base_hf_dir: str | Path, adapter_dir: str | Path, rows: list[dict[str, Any]],
                   max_seq_len: int) -> dict[str, dict[str, float]]:
    """{"base": {...}, "modifier": {...}} mean per-token loss on `rows` (`{"messages": [...]}`)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_hf_dir)
    tokenized = tokenize_rows(tokenizer, rows, max_seq_len).rows
    if not tokenized:
        raise ValueError("no held-out row survived tokenization")
    model = AutoModelForCausalLM.from_pretrained(base_hf_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).eval()
    modifier = _mean_token_loss(model, tokenized, "held-out loss (modifier)")
    with model.disable_adapter():
        base = _mean_token_loss(model, tokenized, "held-out loss (base)")
    return {"base": base, "modifier": modifier}
