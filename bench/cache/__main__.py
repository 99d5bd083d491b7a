"""Cache-hit latency of the router with Redis: `python -m bench.cache [--requests N] [--redis-url URL]`.

Starts a private redis-server (unless --redis-url) and a router process with the Redis cache, stores
one answer the way the router stores it (`ResponseCache.put`, same key, same namespace), then times N
identical requests from a keep-alive client: non-streamed hits, streamed hits (SSE replay), and
`GET /health` as the floor of the HTTP stack on this machine, and the router's lookup alone
(plan + Redis GET + decode, in-process). No model is loaded: a hit never
reaches a worker. Prints a table; writes bench/cache/results/cache_hit.json. Target: hit p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter

from tandem.common.wire import ChatCompletionRequest
from tandem.services.cache.backends import build_backend
from tandem.services.cache.response_cache import CacheCounters, ResponseCache
from tandem.services.cache.settings import CacheSettings

BODY = {"model": "tandem-base", "messages": [{"role": "user", "content": "List three primary colors."}],
        "max_tokens": 16, "temperature": 0}
ANSWER = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "tandem-base",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Red, yellow and blue are the three "
                                                "primary colors of traditional color theory."},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 36, "completion_tokens": 16, "total_tokens": 52}}
ROUTE = {"route": "tandem-base", "domain": "general", "confidence": 1.0, "reason": "explicit model"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": statistics.fmean(ordered) * 1000, "n": len(ordered)}


def timed(client: httpx.Client, n: int, call) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call(client)
        samples.append(time.perf_counter() - started)
    return samples


async def prefill(settings: CacheSettings, requests: int) -> list[float]:
    """Store the answer as the router does; then time the router's own lookup (plan + Redis GET + decode)
    in-process, which is the hit's cost without the HTTP hops."""
    registry = CollectorRegistry()
    cache = ResponseCache(settings, build_backend(settings), CacheCounters(
        Counter("l", "", ["result", "kind"], registry=registry), Counter("e", "", ["op"], registry=registry)))
    body = ChatCompletionRequest(**BODY)
    await cache.put(cache.plan(body, {}), ANSWER, ROUTE)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        assert await cache.get(cache.plan(body, {})) is not None
        samples.append(time.perf_counter() - started)
    await cache.aclose()
    return samples


def run(redis_url: str, requests: int) -> dict:
    cache = CacheSettings(redis_url=redis_url, namespace=f"bench-{os.getpid()}")
    lookup = asyncio.run(prefill(cache, requests))
    port = free_port()
    settings = {"workers": [{"name": "base_model", "url": f"http://127.0.0.1:{free_port()}"}],
                "cache": cache.model_dump()}
    router = subprocess.Popen([sys.executable, "-m", "tandem.services.router", "--port", str(port),
                               "--settings", json.dumps(settings), "--log-level", "warning"])
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            def hit(c: httpx.Client) -> None:
                response = c.post("/v1/chat/completions", json=BODY)
                assert response.headers["x-tandem-cache"] == "hit", response.text

            def hit_stream(c: httpx.Client) -> None:
                response = c.post("/v1/chat/completions", json={**BODY, "stream": True})
                assert response.headers["x-tandem-cache"] == "hit" and response.text.endswith("[DONE]\n\n")

            timed(client, 100, hit)  # warm-up
            return {"hit": percentiles(timed(client, requests, hit)),
                    "hit_stream": percentiles(timed(client, requests, hit_stream)),
                    "health_floor": percentiles(timed(client, requests, lambda c: c.get("/health"))),
                    "lookup_in_process": percentiles(lookup)}
    finally:
        router.terminate()
        router.wait(timeout=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--redis-url", default=None, help="existing Redis (default: start a private one)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cache_hit.json")
    args = parser.parse_args(argv)
    redis = None
    redis_url = args.redis_url
    if redis_url is None:
        port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL)
        redis_url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    try:
        results = run(redis_url, args.requests)
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    report = {"results": results, "target_hit_p50_ms": 2.0, "meets_target": results["hit"]["p50_ms"] <= 2.0,
              "setup": {"backend": "redis", "redis": version, "client": "httpx keep-alive, sequential, same host",
                        "python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count(),
                        "load_avg_1m": os.getloadavg()[0], "requests": args.requests}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'case':<18}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, row in results.items():
        print(f"{name:<18}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['mean_ms']:>9.2f}")
    print(f"target hit p50 <= 2 ms: {'met' if report['meets_target'] else 'NOT met'} "
          f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
