"""Serving benchmark: Tandem (router end to end) against llama-server built from the same llama.cpp
sources and raw llama-cpp-python, every system in the same run, on one GGUF and the same adapters.

The matrix: concurrency 1, 4 and 16; prompts of about 50 and 1,000 of the model's tokens; 128 new
tokens, greedy, streamed; two traffic mixes: all-base, and mixed (round robin over the base and every
modifier the artifacts folder lists; llama-server gets the same adapters through its per-request
`lora` field); plus a shared-prefix workload (a ~600-token system prompt with few-shot turns that every
request repeats) to show prefix reuse. Each cell runs `--reps` times, the systems interleaved per rep
so drift on a shared machine hits all of them; the table shows the median and the min-max spread of
tokens/s, TTFT p50/p95, inter-token latency p50/p95 and errors. Raw llama-cpp-python runs one
request at a time (its only mode), all-base, so it appears at concurrency 1 only. Tandem's response
cache is bypassed (`Cache-Control: no-cache`). Writes bench/results/serving.json.

    python -m bench.serving --artifacts build/bench-artifacts          # the full matrix (~30 min on 2 cores)
    python -m bench.serving --quick --artifacts build/bench-artifacts  # concurrency 1 and 4, short prompts, 1 rep
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

from bench.serving import systems
from bench.serving.client import CellResult, run_cell, run_in_process
from bench.serving.workload import Workload, messages_for, model_for
from tandem.common.manifest import Manifest
from tandem.common.model_files import embedded_model_path

RESULTS = Path(__file__).resolve().parents[1] / "results"
TARGETS = {"c1_tokens_per_s": 0.95, "c1_ttft_max": 1.5, "c4_tokens_per_s": 1.0, "c16_tokens_per_s": 1.0,
           "mixed_tokens_per_s": 1.0}  # Tandem / llama-server, fixed in the issue before any run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="A built artifacts folder: its base and modifiers are "
                        "served (mixed traffic needs modifiers); default: the embedded base alone.")
    parser.add_argument("--quick", action="store_true", help="Concurrency 1 and 4, short prompts, one rep (<= 5 min).")
    parser.add_argument("--concurrency", type=int, nargs="*", default=None)
    parser.add_argument("--prompt-tokens", type=int, nargs="*", default=None)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="llama.cpp threads of the peers; `tandem up` shares the same cores among its workers.")
    parser.add_argument("--slots", type=int, default=16, help="Parallel sequences, the same on every server.")
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--systems", nargs="*", default=["tandem", "llama-server", "raw"],
                        choices=["tandem", "llama-server", "raw"])
    parser.add_argument("--tandem-set", nargs="*", default=[], help="Extra `tandem up` overrides (key=value).")
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.json")
    args = parser.parse_args()
    args.concurrency = args.concurrency or ([1, 4] if args.quick else [1, 4, 16])
    args.prompt_tokens = args.prompt_tokens or ([50] if args.quick else [50, 1000])
    args.reps = args.reps or (1 if args.quick else 3)
    return args


def served_files(artifacts: Path | None) -> tuple[Path, dict[str, Path]]:
    """The base GGUF and the servable modifiers (model name -> LoRA GGUF) of an artifacts folder."""
    if artifacts is None:
        return embedded_model_path(), {}
    entries = Manifest(artifacts).entries()
    bases = [e for e in entries.values() if e.kind == "base"]
    base_path = artifacts / bases[0].files[0].path if bases else embedded_model_path()
    modifiers = {f"tandem-{name}": artifacts / e.files[0].path for name, e in entries.items()
                 if e.kind == "modifier" and e.servable}
    return base_path, modifiers


def cells(args: argparse.Namespace, modifiers: dict[str, Path]) -> list[tuple[int, Workload, str]]:
    mixes = ["base", "mixed"] if modifiers else ["base"]
    plan = [(c, Workload(f"prompt{n}", n), mix) for c in args.concurrency for n in args.prompt_tokens for mix in mixes]
    plan.append((4, Workload("shared-prefix600", 600, shared_prefix=True), "base"))
    return plan


def requests_for(c: int) -> int:
    return max(8, c)


def run_http_system(system: systems.HttpSystem, plan, args, gguf: Path, modifiers: list[str],
                    results: dict) -> None:
    warm = system.request("tandem-base", [{"role": "user", "content": "Hello"}], 8)
    run_cell(system.url, [warm], 1)
    for c, workload, mix in plan:
        batch = [system.request(model_for(mix, i, modifiers), messages_for(workload, i, gguf), args.max_tokens)
                 for i in range(requests_for(c))]
        result = run_cell(system.url, batch, c)
        results.setdefault((system.name, c, workload.name, mix), []).append(result)
        print(f"  {system.name:13} c={c:<3} {workload.name:17} {mix:6} {result.tokens_per_s:7.1f} tok/s "
              f"ttft p50 {result.ttft_p50_s:.3f}s errors {result.errors}", flush=True)


def main() -> None:
    args = parse_args()
    gguf, modifier_files = served_files(args.artifacts)
    plan = cells(args, modifier_files)
    modifiers = list(modifier_files)
    results: dict[tuple, list[CellResult]] = {}
    load_start = os.getloadavg()
    for rep in range(args.reps):
        print(f"rep {rep + 1}/{args.reps}", flush=True)
        if "raw" in args.systems:
            with systems.raw_llama_cpp(gguf, args.threads) as generate:
                generate([{"role": "user", "content": "Hello"}], 8)
                for n in args.prompt_tokens:
                    workload = Workload(f"prompt{n}", n)
                    batch = [messages_for(workload, i, gguf) for i in range(requests_for(1))]
                    result = run_in_process(generate, batch, args.max_tokens)
                    results.setdefault(("raw llama-cpp-python", 1, workload.name, "base"), []).append(result)
                    print(f"  raw           c=1   {workload.name:17} base   {result.tokens_per_s:7.1f} tok/s", flush=True)
        if "llama-server" in args.systems:
            with systems.llama_server(gguf, modifier_files, args.threads, args.slots, args.ctx_per_slot) as system:
                run_http_system(system, plan, args, gguf, modifiers, results)
        if "tandem" in args.systems:
            with systems.tandem(args.artifacts, args.slots, args.tandem_set) as system:
                run_http_system(system, plan, args, gguf, modifiers, results)
    report(results, args, load_start)


def median_row(runs: list[CellResult]) -> dict:
    tps = [r.tokens_per_s for r in runs]
    return {"reps": len(runs), "tokens_per_s": statistics.median(tps), "tokens_per_s_min": min(tps),
            "tokens_per_s_max": max(tps),
            **{k: statistics.median(getattr(r, k) for r in runs)
               for k in ("ttft_p50_s", "ttft_p95_s", "itl_p50_ms", "itl_p95_ms")},
            "errors": sum(r.errors for r in runs), "retries": sum(r.retries for r in runs), "requests": sum(r.requests for r in runs),
            "error_samples": [s for r in runs for s in r.error_samples][:3]}


def ratios(rows: dict[tuple, dict]) -> dict[str, float]:
    out = {}
    for (system, c, workload, mix), row in rows.items():
        peer = rows.get(("llama-server", c, workload, mix))
        if system == "tandem" and peer and peer["tokens_per_s"]:
            key = f"c{c}/{workload}/{mix}"
            out[f"{key}/tokens_per_s"] = row["tokens_per_s"] / peer["tokens_per_s"]
            out[f"{key}/ttft_p50"] = row["ttft_p50_s"] / peer["ttft_p50_s"]
    return out


def verdicts(r: dict[str, float]) -> dict[str, dict]:
    """Each target against every cell it covers: met only if met in all of them."""
    def check(name: str, keys: list[str], ok) -> tuple[str, dict]:
        values = {k: r[k] for k in keys if k in r}
        met = all(ok(v) for v in values.values()) if values else None  # None: no cell measured it
        return name, {"target": TARGETS[name], "cells": values, "met": met}

    return dict([
        check("c1_tokens_per_s", [k for k in r if k.startswith("c1/") and k.endswith("/base/tokens_per_s")],
              lambda v: v >= TARGETS["c1_tokens_per_s"]),
        check("c1_ttft_max", [k for k in r if k.startswith("c1/") and k.endswith("/base/ttft_p50")],
              lambda v: v <= TARGETS["c1_ttft_max"]),
        check("c4_tokens_per_s", [k for k in r if k.startswith("c4/") and k.endswith("/base/tokens_per_s")],
              lambda v: v >= TARGETS["c4_tokens_per_s"]),
        check("c16_tokens_per_s", [k for k in r if k.startswith("c16/") and k.endswith("/base/tokens_per_s")],
              lambda v: v >= TARGETS["c16_tokens_per_s"]),
        check("mixed_tokens_per_s", [k for k in r if "/mixed/" in k and k.endswith("tokens_per_s")],
              lambda v: v >= TARGETS["mixed_tokens_per_s"]),
    ])


def report(results: dict[tuple, list[CellResult]], args: argparse.Namespace, load_start) -> None:
    rows = {key: median_row(runs) for key, runs in results.items()}
    r = ratios(rows)
    v = verdicts(r)
    load_end = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    args.out.write_text(json.dumps({
        "config": config, "cpu_count": os.cpu_count(), "loadavg_at_start": load_start, "loadavg_at_end": load_end,
        "cells": [{"system": s, "concurrency": c, "workload": w, "mix": m, **row,
                   "runs": [asdict(x) for x in results[(s, c, w, m)]]} for (s, c, w, m), row in rows.items()],
        "ratios": r, "targets": v}, indent=2))
    header = (f"{'system':20} {'conc':>4} {'workload':17} {'mix':6} {'tok/s (min-max)':>22} {'ttft p50':>9} "
              f"{'ttft p95':>9} {'itl p50':>8} {'itl p95':>8} {'err':>5}")
    print(header)
    print("-" * len(header))
    for (s, c, w, m), row in sorted(rows.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[0][1], kv[0][0])):
        spread = f"{row['tokens_per_s']:.1f} ({row['tokens_per_s_min']:.1f}-{row['tokens_per_s_max']:.1f})"
        print(f"{s:20} {c:>4} {w:17} {m:6} {spread:>22} {row['ttft_p50_s']:>8.3f}s {row['ttft_p95_s']:>8.3f}s "
              f"{row['itl_p50_ms']:>6.1f}ms {row['itl_p95_ms']:>6.1f}ms {row['errors']:>5}")
    print()
    for key, value in sorted(r.items()):
        print(f"tandem / llama-server {key}: {value:.2f}")
    for name, verdict in v.items():
        state = {True: "met", False: "MISSED", None: "not measured in this run"}[verdict["met"]]
        print(f"target {name} ({verdict['target']}): {state}")
    print(f"load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end; written to {args.out}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
