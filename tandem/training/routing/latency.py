"""In-process routing latency by prompt-length bucket, and over a stated mix of lengths.

Wall-clock time is what a caller waits; on a shared machine it includes time spent queued
behind other processes, so the CPU time the process used per request (`cpu_*`, what the
request costs on an otherwise idle core) is recorded beside it, with the load average.

Prompts of a bucket are real prompts (hand-written and held-out test texts) joined until they
reach the bucket's token count, then cut there: long prompts look like a question with pasted
context, which is how real long requests look.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import numpy as np

from tandem.common.wire import ChatCompletionRequest

BUCKETS = (16, 64, 256, 512)
# The stated realistic mix of prompt lengths (chat traffic is mostly short; a fifth pastes context).
LENGTH_MIX = {16: 0.40, 64: 0.35, 256: 0.20, 512: 0.05}


def prompt_pool(handwritten: list[str], test: list[str], size: int = 2000, seed: int = 0) -> list[str]:
    """The texts bucket prompts are built from: every hand-written prompt plus a fixed random
    sample of held-out test texts (all sources, not the first ones in config order)."""
    return handwritten + random.Random(seed).sample(test, min(size, len(test)))


def bucket_prompts(texts: list[str], tokenizer, n_tokens: int, count: int, seed: int = 0) -> list[str]:
    """`count` prompts of about `n_tokens` tokens (no special tokens) built from `texts`."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy without the router's truncation
    tokenizer.no_truncation()
    rng = random.Random(seed + n_tokens)
    prompts = []
    for _ in range(count):
        pieces, ids = [], []
        while len(ids) < n_tokens:
            pieces.append(rng.choice(texts))
            ids = tokenizer.encode("\n\n".join(pieces), add_special_tokens=False).ids
        prompts.append(tokenizer.decode(ids[:n_tokens]))
    return prompts


def _percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
            "mean_ms": round(float(np.mean(times)), 3), "n": len(times)}


def measure(router, texts: list[str], per_bucket: int = 200, warmup: int = 20, seed: int = 0) -> dict[str, Any]:
    """Time `router.route` per bucket and over LENGTH_MIX; returns milliseconds."""
    buckets: dict[str, Any] = {}
    samples: dict[int, list[float]] = {}
    for n in BUCKETS:
        requests = [ChatCompletionRequest(model="auto", messages=[{"role": "user", "content": p}])
                    for p in bucket_prompts(texts, router.encoder.tokenizer, n, per_bucket, seed)]
        for request in requests[:warmup]:
            router.route(request)
        times, cpu, first_stage = [], [], 0
        for request in requests:
            start, start_cpu = time.perf_counter(), time.process_time()
            decision = router.route(request)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            first_stage += decision.reason.endswith("first-stage")
        samples[n] = list(zip(times, cpu))
        buckets[str(n)] = {**_percentiles(times), **{f"cpu_{k}": v for k, v in _percentiles(cpu).items() if k != "n"},
                           "first_stage_share": round(first_stage / len(requests), 3)}
    rng = random.Random(seed)
    sizes, weights = zip(*LENGTH_MIX.items())
    mix = [rng.choice(samples[rng.choices(sizes, weights)[0]]) for _ in range(4000)]
    wall, cpu_mix = _percentiles([w for w, _ in mix]), _percentiles([c for _, c in mix])
    return {"buckets": buckets, "mix": {str(k): v for k, v in LENGTH_MIX.items()}, "mix_p50_ms": wall["p50_ms"],
            "mix_p99_ms": wall["p99_ms"], "mix_cpu_p50_ms": cpu_mix["p50_ms"], "mix_cpu_p99_ms": cpu_mix["p99_ms"],
            "threads": router.encoder.session.get_session_options().intra_op_num_threads,
            "cores": os.cpu_count(), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}
