"""Serving benchmark: Tandem's router end to end against its peers, in one run, on one GGUF.

Peers: raw llama-cpp-python in-process (the ceiling for one stream), llama-cpp-python's own
server, and llama-server built from the llama.cpp sources in the llama-cpp-python sdist
(continuous batching). Same prompts, greedy, 64 new tokens, concurrency 1 and 4. Every system
streams, so time to first token is measured the same way; tokens are counted as content chunks
(one per token on every system). Writes bench/results/serving.json and prints a table with the
ratios the targets are stated in. Machines are shared and noisy: compare within one run.

    python -m bench.serving [--requests 16] [--max-tokens 64] [--skip llama_cpp_server]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from tandem.common.model_files import embedded_model_path
from tests.conftest import free_port, wait_for

RESULTS = Path(__file__).resolve().parents[1] / "results"
PROMPTS = [
    "Explain why the sky is blue.", "Write a short poem about the sea.", "What is a hash table?",
    "Give me three tips for learning to cook.", "Describe the water cycle.", "What does a compiler do?",
    "Summarize the plot of a detective story.", "How do vaccines work?",
]


@dataclass
class RequestResult:
    latency: float
    ttft: float
    tokens: int


@dataclass
class RunSummary:
    system: str
    concurrency: int
    requests: int
    failed: int
    tokens: int
    wall_s: float
    tokens_per_s: float
    p50_latency_s: float
    p95_latency_s: float
    p50_ttft_s: float
    p95_ttft_s: float


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _summary(system: str, concurrency: int, results: list[RequestResult], wall: float, failed: int = 0) -> RunSummary:
    tokens = sum(r.tokens for r in results)
    lat, ttft = [r.latency for r in results] or [0.0], [r.ttft for r in results] or [0.0]
    return RunSummary(system, concurrency, len(results), failed, tokens, wall, tokens / wall,
                      _pct(lat, 50), _pct(lat, 95), _pct(ttft, 50), _pct(ttft, 95))


def _stream_http(client: httpx.Client, url: str, model: str, prompt: str, max_tokens: int) -> RequestResult:
    started = time.perf_counter()
    ttft, tokens = None, 0
    payload = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
               "temperature": 0, "stream": True}
    # no-cache: Tandem's response cache would answer repeats without generating
    with client.stream("POST", f"{url}/v1/chat/completions", json=payload,
                       headers={"Cache-Control": "no-cache"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or []
            if choices and choices[0].get("delta", {}).get("content"):
                tokens += 1
                if ttft is None:
                    ttft = time.perf_counter() - started
    return RequestResult(time.perf_counter() - started, ttft or 0.0, tokens)


def run_http(system: str, url: str, model: str, concurrency: int, n: int, max_tokens: int) -> RunSummary:
    jobs: queue.Queue[str] = queue.Queue()
    for i in range(n):
        jobs.put(PROMPTS[i % len(PROMPTS)])
    results: list[RequestResult] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=300) as client:
            while True:
                try:
                    prompt = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    result = _stream_http(client, url, model, prompt, max_tokens)
                except httpx.HTTPError:  # llama-cpp-python's server cuts a stream when another request arrives
                    with lock:
                        failures.append(prompt)
                    continue
                with lock:
                    results.append(result)

    _stream_http(httpx.Client(timeout=300), url, model, PROMPTS[0], 8)  # warm-up
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summary(system, concurrency, results, time.perf_counter() - started, failed=len(failures))


def run_raw(gguf: Path, n: int, max_tokens: int, threads: int) -> RunSummary:
    """llama-cpp-python in this process, one request after another (its only mode)."""
    from tandem.engine.llama_loader import load_llama

    llm = load_llama(str(gguf), n_ctx=2048, n_threads=threads, n_threads_batch=threads)
    results = []

    def one(prompt: str, tokens: int) -> RequestResult:
        started, ttft, count = time.perf_counter(), None, 0
        for chunk in llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=tokens,
                                                temperature=0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                count += 1
                ttft = ttft or time.perf_counter() - started
        return RequestResult(time.perf_counter() - started, ttft or 0.0, count)

    one(PROMPTS[0], 8)
    started = time.perf_counter()
    for i in range(n):
        results.append(one(PROMPTS[i % len(PROMPTS)], max_tokens))
    return _summary("raw llama-cpp-python (in-process)", 1, results, time.perf_counter() - started)


def start(cmd: list[str], ready_url: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_for(ready_url, proc=proc, timeout=300)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="Requests per system and concurrency level.")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip", nargs="*", default=[], choices=["raw", "tandem", "llama_cpp_server", "llama_server"])
    args = parser.parse_args()
    gguf = embedded_model_path()
    runs: list[RunSummary] = []

    if "raw" not in args.skip:
        runs.append(run_raw(gguf, args.requests, args.max_tokens, args.threads))

    if "tandem" not in args.skip:
        port, worker_port = free_port(), free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tandem.cli", "up", "--port", str(port), "--artifacts",
                                 "/nonexistent", f"base_model.port={worker_port}", f"base_model.n_threads={args.threads}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(f"http://127.0.0.1:{port}/ready", proc=proc)
            for c in (1, 4):
                runs.append(run_http("tandem router (end to end)", f"http://127.0.0.1:{port}", "tandem-base", c,
                                     args.requests, args.max_tokens))
        finally:
            stop(proc)

    if "llama_cpp_server" not in args.skip:
        port = free_port()
        proc = start([sys.executable, "-m", "bench.serving.llama_cpp_server", "--model", str(gguf), "--port", str(port),
                      "--n_ctx", "2048", "--n_threads", str(args.threads)], f"http://127.0.0.1:{port}/v1/models")
        try:
            for c in (1, 4):
                runs.append(run_http("llama-cpp-python server", f"http://127.0.0.1:{port}", "x", c, args.requests,
                                     args.max_tokens))
        finally:
            stop(proc)

    if "llama_server" not in args.skip:
        from bench.serving.llama_server_build import llama_server_binary

        port = free_port()
        proc = start([str(llama_server_binary()), "-m", str(gguf), "--port", str(port), "-np", "4", "-c", "8192",
                      "-t", str(args.threads), "--no-repack", "--no-webui"], f"http://127.0.0.1:{port}/health")
        try:
            for c in (1, 4):
                runs.append(run_http("llama-server (4 slots)", f"http://127.0.0.1:{port}", "x", c, args.requests,
                                     args.max_tokens))
        finally:
            stop(proc)

    report(runs, args)


def report(runs: list[RunSummary], args: argparse.Namespace) -> None:
    by = {(r.system.split(" ")[0], r.concurrency): r for r in runs}
    ratios = {}
    if ("tandem", 1) in by and ("raw", 1) in by:
        ratios["tandem_c1_over_raw_c1"] = by["tandem", 1].tokens_per_s / by["raw", 1].tokens_per_s
    if ("tandem", 4) in by and ("llama-server", 4) in by:
        ratios["tandem_c4_over_llama_server_c4"] = by["tandem", 4].tokens_per_s / by["llama-server", 4].tokens_per_s
    if ("tandem", 1) in by and ("llama-server", 1) in by:
        ratios["tandem_c1_over_llama_server_c1"] = by["tandem", 1].tokens_per_s / by["llama-server", 1].tokens_per_s
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "serving.json"
    load = os.getloadavg()
    out.write_text(json.dumps({"config": vars(args), "loadavg_at_end": load, "runs": [asdict(r) for r in runs],
                               "ratios": ratios}, indent=2))
    header = f"{'system':38} {'conc':>4} {'ok/fail':>7} {'tok/s':>8} {'p50 lat':>8} {'p95 lat':>8} {'p50 ttft':>9} {'p95 ttft':>9}"
    print(header)
    print("-" * len(header))
    for r in runs:
        print(f"{r.system:38} {r.concurrency:>4} {f'{r.requests}/{r.failed}':>7} {r.tokens_per_s:>8.1f} {r.p50_latency_s:>8.2f} {r.p95_latency_s:>8.2f} "
              f"{r.p50_ttft_s:>9.3f} {r.p95_ttft_s:>9.3f}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    print(f"load average at end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; written to {out}")


if __name__ == "__main__":
    main()
