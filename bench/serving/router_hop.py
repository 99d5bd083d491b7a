"""What the router adds on top of the worker: the same small request sent straight to the worker
(with the internal token) and through the router, interleaved, plus `/v1/route` (the routing decision
alone, `model=auto`, the trained router when the artifacts hold one). Non-streamed, max_tokens=1,
greedy, a fresh prompt per pair, the router's cache bypassed. Reports p50/p95 of each and the p50
difference (target: <= 1 ms). Writes bench/results/router_hop.json.

    python -m bench.serving.router_hop [--artifacts DIR] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.serving.client import percentile
from tests.conftest import free_port, wait_for

RESULTS = Path(__file__).resolve().parents[1] / "results"
TARGET_MS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS / "router_hop.json")
    args = parser.parse_args()
    token = secrets.token_urlsafe(32)
    port, worker_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tandem.cli", "up", "--port", str(port), "--artifacts",
                             str(args.artifacts or "/nonexistent"), "default_bundle=false",
                             f"base_model.port={worker_port}", f"modifier_worker.port={free_port()}"],
                            env={**os.environ, "TANDEM_INTERNAL_TOKEN": token},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    router, worker = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{worker_port}"
    times: dict[str, list[float]] = {"worker": [], "router": [], "route": []}
    try:
        wait_for(f"{router}/ready", proc=proc, timeout=300)
        with httpx.Client(timeout=60) as client:
            def timed(name: str, url: str, payload: dict, headers: dict) -> None:
                started = time.perf_counter()
                response = client.post(url, json=payload, headers=headers)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                times[name].append(elapsed * 1000)

            for i in range(args.requests + 10):
                payload = {"model": "tandem-base", "max_tokens": 1, "temperature": 0,
                           "messages": [{"role": "user", "content": f"Request {i}: name a colour."}]}
                legs = [("worker", f"{worker}/v1/chat/completions", {"Authorization": f"Bearer {token}"}),
                        ("router", f"{router}/v1/chat/completions", {"Cache-Control": "no-cache"})]
                for name, url, headers in (legs if i % 2 else legs[::-1]):
                    timed(name, url, payload, headers)
                timed("route", f"{router}/v1/route", {**payload, "model": "auto"}, {})
                if i == 9:  # warm-up done
                    times = {k: [] for k in times}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = {name: {"p50_ms": percentile(v, 50), "p95_ms": percentile(v, 95), "n": len(v)} for name, v in times.items()}
    paired = [r - w for r, w in zip(times["router"], times["worker"], strict=True)]
    summary["router_minus_worker_p50_ms"] = statistics.median(paired)
    summary["difference_of_p50s_ms"] = summary["router"]["p50_ms"] - summary["worker"]["p50_ms"]
    summary["target_ms"] = TARGET_MS
    summary["met"] = summary["difference_of_p50s_ms"] <= TARGET_MS and summary["route"]["p50_ms"] <= TARGET_MS
    summary["loadavg_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    for name in ("worker", "router", "route"):
        print(f"{name:7} p50 {summary[name]['p50_ms']:7.2f} ms   p95 {summary[name]['p95_ms']:7.2f} ms   n={summary[name]['n']}")
    print(f"router - worker: difference of p50s {summary['difference_of_p50s_ms']:.2f} ms, median paired "
          f"{summary['router_minus_worker_p50_ms']:.2f} ms; target <= {TARGET_MS} ms (and /v1/route p50): "
          f"{'met' if summary['met'] else 'MISSED'}; load average {summary['loadavg_at_end'][0]:.1f}; written to {args.out}")


if __name__ == "__main__":
    main()
