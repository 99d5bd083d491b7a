"""Modifier serving costs in the worker's engine: adapter switch cost, memory with 1 vs 3 adapters,
and adapter size against the plan's 40-50 MB per modifier for an 8B base.

    python -m bench.modifiers.adapter_switch --artifacts artifacts [--requests 48] [--out bench/results/modifiers.json]

Switch cost: the same short request, one at a time, on an engine sized like the worker (4 slots x
2048 tokens), in pairs on one adapter with the pairs cycling through the adapters, so the first
request of each pair pays one switch and the second none. A switch sets the adapter on the context
and clears the KV cache's cells (not its data); llama.cpp then re-reserves its compute graph on
the next decode. Memory: a fresh process per count (0, 1, all adapters) loads the engine, answers
one request and reports its RSS, so each extra adapter's cost is the RSS difference. Sizes: the adapter files, and `adapter_size` for the ranks
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
from tandem.services.worker.settings import WorkerSettings
from tandem.training.modifiers.adapter_size import ALL_LINEAR, LLAMA_3_1_8B, lora_bytes

PROMPT = "<|im_start|>user\nWrite a function that adds two numbers.<|im_end|>\n<|im_start|>assistant\n"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _timed_requests(engine, adapters: list[str | None], max_tokens: int) -> list[float]:
    from tandem.services.engine.batched import SamplingParams

    tokens = engine.tokenize(PROMPT, special=True)  # our own template text
    latencies = []
    for adapter in adapters:
        started = time.perf_counter()
        handle = engine.submit(tokens, SamplingParams(max_tokens=max_tokens, temperature=0.0), adapter)
        while (await handle.events.get()).finish_reason is None:
            pass
        latencies.append(time.perf_counter() - started)
    return latencies


def switch_cost(base: Path, adapters: dict[str, Path], requests: int, max_tokens: int, threads: int,
                slots: int, ctx_per_slot: int) -> dict:
    """Requests in pairs on one adapter, the pairs cycling through the adapters (A A B B C C A A ...):
    the first request of a pair pays a switch, the second does not. The switch cost is the median
    of the paired differences, so drifts of a shared machine hit both sides of a difference alike."""
    from tandem.services.engine.batched import BatchedEngine

    engine = BatchedEngine(base, slots=slots, ctx_per_slot=ctx_per_slot, n_threads=threads, adapters=adapters)
    engine.start()
    names = list(adapters)
    order = [names[i % len(names)] for i in range(requests) for _ in range(2)]
    try:
        asyncio.run(_timed_requests(engine, names[-1:] * 2, max_tokens))  # warm-up
        switches_before = engine.adapter_switches
        latencies = asyncio.run(_timed_requests(engine, order, max_tokens))
        switches = engine.adapter_switches - switches_before
    finally:
        engine.stop()
    switched, unswitched = latencies[0::2], latencies[1::2]
    diffs = sorted((a - b) * 1000 for a, b in zip(switched, unswitched))
    quartiles = statistics.quantiles(diffs, n=4)
    return {"pairs": requests, "max_tokens": max_tokens, "threads": threads,
            "slots": slots, "ctx_per_slot": ctx_per_slot, "switches": switches,
            "same_adapter_median_ms": statistics.median(unswitched) * 1000,
            "after_switch_median_ms": statistics.median(switched) * 1000,
            "switch_cost_ms_per_request": statistics.median(diffs),
            "switch_cost_ms_iqr": [quartiles[0], quartiles[2]]}


def memory_child(base: str, adapters_json: str, threads: int) -> None:
    """Runs in a fresh process: load the engine with the given adapters, answer once, print RSS."""
    from tandem.services.engine.batched import BatchedEngine

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
    lines = [f"adapter switch (slots={s['slots']} x {s['ctx_per_slot']} tokens, greedy, {s['max_tokens']} new tokens, "
             f"{s['pairs']} request pairs, {s['threads']} threads)",
             f"  no switch          : {s['same_adapter_median_ms']:8.1f} ms/request (median)",
             f"  after a switch     : {s['after_switch_median_ms']:8.1f} ms/request ({s['switches']} switches)",
             f"  switch cost        : {s['switch_cost_ms_per_request']:8.1f} ms/request (median of paired "
             f"differences; IQR {s['switch_cost_ms_iqr'][0]:.1f} to {s['switch_cost_ms_iqr'][1]:.1f})", "",
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
    parser.add_argument("--requests", type=int, default=48, help="Request pairs.")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--slots", type=int, default=WorkerSettings.model_fields["slots"].default,
                        help="Engine slots (default: the worker's).")
    parser.add_argument("--ctx-per-slot", type=int, default=WorkerSettings.model_fields["ctx_per_slot"].default,
                        help="Context per slot (default: the worker's); the KV cache is cleared on a switch.")
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
    result = {"base": str(base), "switch": switch_cost(base, adapters, args.requests, args.max_tokens, args.threads,
                                                  args.slots, args.ctx_per_slot),
              "memory": memory_by_count(base, adapters, args.threads), "sizes": adapter_sizes(adapters, manifest)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
