"""Token log-probabilities from an HF checkpoint (transformers) or a GGUF file (llama.cpp).

Both scorers take token ids, never text, so every stage is scored on exactly the same tokens
(tokenized once with the source model's HF tokenizer; the GGUF carries the same vocabulary).
Perplexity and the multiple-choice task metric are both built on `continuation_logprobs`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm


def _log_softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class HFScorer:
    """Scores with a transformers causal LM already in memory (float32, CPU or GPU)."""

    def __init__(self, model):
        self.model = model.eval()

    def continuation_logprobs(self, context: list[int], continuations: list[list[int]]) -> list[np.ndarray]:
        """All continuations in one right-padded batch."""
        import torch

        device = next(self.model.parameters()).device
        rows = [context + cont for cont in continuations]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        out = []
        for i, cont in enumerate(continuations):
            logp = torch.log_softmax(logits[i, len(context) - 1:len(context) + len(cont) - 1].float(), dim=-1)
            out.append(logp[torch.arange(len(cont)), torch.tensor(cont)].cpu().numpy().astype(np.float64))
        return out


class GGUFScorer:
    """Scores with llama.cpp; the context is evaluated once and shared by all continuations."""

    def __init__(self, gguf_path: str | Path, n_ctx: int = 2048, threads: int = 0):
        self.llm = load_gguf(gguf_path, n_ctx=n_ctx, logits_all=True, threads=threads)

    def continuation_logprobs(self, context: list[int], continuations: list[list[int]]) -> list[np.ndarray]:
        self.llm.reset()
        self.llm.eval(context)
        out = []
        for cont in continuations:
            self.llm.n_tokens = len(context)
            self.llm.eval(cont)
            rows = self.llm.scores[len(context) - 1:len(context) + len(cont) - 1]
            out.append(_log_softmax_rows(rows)[np.arange(len(cont)), cont])
        return out

    def close(self) -> None:
        self.llm.close()


def load_gguf(path: str | Path, n_ctx: int, logits_all: bool = False, threads: int = 0):
    """A llama.cpp model through the project's AMX-safe loader."""
    from tandem.services.engine.offline import load_llama

    threads = threads or os.cpu_count() or 1
    return load_llama(str(path), n_ctx=n_ctx, n_batch=min(n_ctx, 512), logits_all=logits_all,
                      n_threads=threads, n_threads_batch=threads)


def perplexity(scorer, windows: list[list[int]], bos_id: int, desc: str = "perplexity", batch: int = 4) -> float:
    """exp(mean NLL) over every token of `windows`, each scored after a BOS token."""
    total, count = 0.0, 0
    for start in tqdm(range(0, len(windows), batch), desc=desc, leave=False):
        chunk = windows[start:start + batch]
        for logp, window in zip(scorer.continuation_logprobs([bos_id], chunk), chunk):
            total -= float(logp.sum())
            count += len(window)
    return math.exp(total / count)
