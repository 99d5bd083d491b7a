"""Base worker and modifier worker on one machine: how `tandem up` should share the cores.

`tandem up` over an artifacts folder with modifiers starts two llama.cpp workers. Each llama.cpp
thread polls at every barrier of a decode step, so two workers that each take every core
oversubscribe them when both are busy. Two layouts, the same loads on each: `shared` (the
default: every worker on all cores, one decode step at a time through a lock file) and `split` (the
cores divided between the workers). Two loads: both workers busy (N
requests to `tandem-base` and N to the modifiers at once) and the base alone (2N to `tandem-base`);
greedy, non-streamed, the cache bypassed. Prints a table and writes bench/results/two_workers.json.

    python -m bench.serving.two_workers --artifacts artifacts [--requests 4] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import httpx

from tandem.common.manifest import Manifest
from tests.conftest import start_tandem_up, stop_tandem_up

PROMPTS = ["Write a Python function that reverses a string.", "Explain what a hash map is.",
           "List three uses of the command line tool grep.", "What is 17 times 23? Show your work."]


async def _load(url: str, models: list[str], requests: int, max_tokens: int) -> dict:
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(i: int) -> int:
            body = {"model": models[i % len(models)], "max_tokens": max_tokens, "temperature": 0,
                    "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]}
            reply = await client.post(f"{url}/v1/chat/completions", json=body, headers={"Cache-Control": "no-store"})
            reply.raise_for_status()
            return reply.json()["usage"]["completion_tokens"]

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(i) for i in range(requests)))
        seconds = time.perf_counter() - started
    return {"requests": requests, "completion_tokens": sum(tokens), "seconds": seconds,
            "tokens_per_s": sum(tokens) / seconds}


# Every worker on all cores without the lock is left out: measured 5.3x slower than split when both
# are busy (docs/BENCHMARKS.md), and its run outlasts the rest of this bench.
LAYOUTS = {"shared (default)": lambda cores: [],
           "split": lambda cores: ["worker_cores=split"]}


def measure(artifacts: Path, requests: int, max_tokens: int, extra: list[str]) -> dict:
    modifiers = [f"tandem-{n}" for n, e in Manifest(artifacts).entries(kind="modifier").items() if e.servable]
    running = start_tandem_up(artifacts, *extra)
    try:
        models = ["tandem-base", *modifiers]
        asyncio.run(_load(running.url, models, len(models), 4))  # warm-up
        mix = [m for i in range(requests) for m in ("tandem-base", modifiers[i % len(modifiers)])]
        return {"both busy": asyncio.run(_load(running.url, mix, len(mix), max_tokens)),
                "base alone": asyncio.run(_load(running.url, ["tandem-base"], len(mix), max_tokens))}
    finally:
        stop_tandem_up(running)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--requests", type=int, default=4, help="Requests per worker.")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("bench/results/two_workers.json"))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    results = {"cores": cores, "loadavg_at_start": os.getloadavg()}
    for name, extra in LAYOUTS.items():
        results[name] = measure(args.artifacts, args.requests, args.max_tokens, extra(cores))
    results["loadavg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'layout':20} {'load':11} {'requests':>8} {'tokens':>7} {'seconds':>8} {'tok/s':>7}")
    for name in LAYOUTS:
        for load, r in results[name].items():
            print(f"{name:20} {load:11} {r['requests']:>8} {r['completion_tokens']:>7} {r['seconds']:>8.1f} "
                  f"{r['tokens_per_s']:>7.1f}")
    print(f"load average {results['loadavg_at_start'][0]:.1f} at start, {results['loadavg_at_end'][0]:.1f} at end")

if __name__ == "__main__":
    main()
