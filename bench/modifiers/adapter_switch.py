"""Modifier serving costs in the worker's engine: adapter switch cost, memory with 1 vs 3 adapters,
and adapter size against the plan's 40-50 MB per modifier for an 8B base.

    python -m bench.modifiers.adapter_switch --artifacts artifacts [--requests 12] [--out bench/results/modifiers.json]

Switch cost: the same short request, one at a time (slots=1), either all on one adapter or
cycling through the adapters, so every request in the second run pays one switch (the engine
sets the adapter on the context and clears the KV cache). Memory: a fresh process per count
(0, 1, all adapters) loads the engine, answers one request and reports its RSS, so each extra
adapter's cost is the RSS difference. Sizes: the adapter files, and `adapter_size` for the ranks
and targets that give 40-50 MB at Llama 3.1 8B.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tandem.common.manifest import Manifest
from tandem.common.model_files import resolve_model_path
from tandem.training.modifiers.adapter_size import ALL_LINEAR, LLAMA_3_1_8B, lora_bytes

PROMPT = "<|im_start|>user\nWrite a function that adds two numbers.<|im_end|>\n<|im_start|>assistant\n"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _timed_requests(engine, adapters: list[str | None], max_tokens: int) -> list[float]:
    from tandem.engine.batched import SamplingParams

    tokens = engine.tokenize(PROMPT)
    latencies = []
    for adapter in adapters:
        started = time.perf_counter()
        handle = engine.submit(tokens, SamplingParams(max_tokens=max_tokens, temperature=0.0), adapter)
        while (await handle.events.get()).finish_reason is None:
            pass
        latencies.append(time.perf_counter() - started)
    return latencies


def switch_cost(base: Path, adapters: dict[str, Path], requests: int, max_tokens: int, threads: int) -> dict:
    from tandem.engine.batched import BatchedEngine

    engine = BatchedEngine(base, slots=1, ctx_per_slot=512, n_threads=threads, adapters=adapters)
    engine.start()
    try:
        names = list(adapters)
        asyncio.run(_timed_requests(engine, names[:1] * 2, max_tokens))  # warm-up
        switches_before = engine.adapter_switches
        same = asyncio.run(_timed_requests(engine, names[:1] * requests, max_tokens))
        switches_same = engine.adapter_switches - switches_before
        cycle = [names[i % len(names)] for i in range(requests)]
        alternating = asyncio.run(_timed_requests(engine, cycle, max_tokens))
        switches_alt = engine.adapter_switches - switches_before - switches_same
    finally:
        engine.stop()
    same_ms, alt_ms = statistics.median(same) * 1000, statistics.median(alternating) * 1000
    return {"requests": requests, "max_tokens": max_tokens, "threads": threads,
            "same_adapter_median_ms": same_ms, "alternating_median_ms": alt_ms,
            "switches_same": switches_same, "switches_alternating": switches_alt,
            "switch_cost_ms_per_request": alt_ms - same_ms}


def memory_child(base: str, adapters_json: str, threads: int) -> None:
    """Runs in a fresh process: load the engine with the given adapters, answer once, print RSS."""
    from tandem.engine.batched import BatchedEngine

    adapters = json.loads(adapters_json)
    before = _rss_mb()
    engine = BatchedEngine(base, slots=1, ctx_per_slot=512, n_threads=threads, adapters=adapters)
    engine.start()
    try:
        asyncio.run(_timed_requests(engine, [next(iter(adapters), None)], 8))
        print(json.dumps({"adapters": len(adapters), "rss_mb": _rss_mb(), "rss_before_load_mb": before}))
    finally:
        engine.stop()


def memory_by_count(base: Path, adapters: dict[str, Path], threads: int) -> list[dict]:
    rows = []
    names = list(adapters)
    for count in sorted({0, 1, len(names)}):
        chosen = {n: str(adapters[n]) for n in names[:count]}
        out = subprocess.run([sys.executable, "-m", "bench.modifiers.adapter_switch", "--memory-child", str(base),
                              json.dumps(chosen), "--threads", str(threads)], capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["adapter_file_mb"] = sum(Path(p).stat().st_size for p in chosen.values()) / 1e6
        rows.append(row)
    return rows


def adapter_sizes(adapters: dict[str, Path], manifest: Manifest) -> dict:
    files = {n: Path(p).stat().st_size / 1e6 for n, p in adapters.items()}
    ranks = {n.removeprefix("tandem-"): manifest.entry(n.removeprefix("tandem-")).config.get("sft", {}).get("lora")
             for n in adapters}
    at_8b = {f"r{r}_{label}": lora_bytes(LLAMA_3_1_8B, r, targets) / 1e6
             for r, label, targets in [(8, "all_linear", ALL_LINEAR), (16, "all_linear", ALL_LINEAR),
                                       (16, "qkvo", ALL_LINEAR[:4]), (32, "qkvo", ALL_LINEAR[:4])]}
    return {"adapter_file_mb": files, "lora": ranks, "llama_3_1_8b_f16_mb": at_8b}


def _table(result: dict) -> str:
    s = result["switch"]
    lines = ["adapter switch (slots=1, greedy, "
             f"{s['max_tokens']} new tokens, {s['requests']} requests, {s['threads']} threads)",
             f"  all on one adapter : {s['same_adapter_median_ms']:8.1f} ms/request (median)",
             f"  alternating        : {s['alternating_median_ms']:8.1f} ms/request ({s['switches_alternating']} switches)",
             f"  switch cost        : {s['switch_cost_ms_per_request']:8.1f} ms/request", "",
             "memory (fresh process, RSS after one request)"]
    lines += [f"  {m['adapters']} adapter(s): {m['rss_mb']:8.1f} MB   (adapter files {m['adapter_file_mb']:.1f} MB)"
              for m in result["memory"]]
    lines += ["", "adapter size"]
    lines += [f"  {n}: {mb:.1f} MB" for n, mb in result["sizes"]["adapter_file_mb"].items()]
    lines += [f"  Llama 3.1 8B {k}: {mb:.1f} MB (f16)" for k, mb in result["sizes"]["llama_3_1_8b_f16_mb"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--model-path", default=None, help="Base GGUF (default: embedded).")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/modifiers.json"))
    parser.add_argument("--memory-child", nargs=2, metavar=("BASE", "ADAPTERS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], args.memory_child[1], args.threads)
        return 0
    manifest = Manifest(args.artifacts)
    adapters = {f"tandem-{n}": manifest.verified_path(n) for n in manifest.entries(kind="modifier")}
    if len(adapters) < 2:
        raise SystemExit(f"{args.artifacts} lists {len(adapters)} modifier(s); the switch benchmark needs two or more")
    base = resolve_model_path(args.model_path)
    result = {"base": str(base), "switch": switch_cost(base, adapters, args.requests, args.max_tokens, args.threads),
              "memory": memory_by_count(base, adapters, args.threads), "sizes": adapter_sizes(adapters, manifest)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
