"""Streamed OpenAI chat requests, timed as a client sees them: time to first token, the gaps between
tokens, and tokens counted from the final usage chunk (so a server that packs several tokens into
one chunk is counted right; gaps of a multi-token chunk are split evenly between its tokens)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class RequestResult:
    latency: float
    ttft: float
    tokens: int
    gaps: list[float] = field(default_factory=list)


@dataclass
class CellResult:
    """One run of one cell of the matrix (system x concurrency x workload x mix)."""

    requests: int
    errors: int
    tokens: int
    wall_s: float
    tokens_per_s: float
    ttft_p50_s: float
    ttft_p95_s: float
    itl_p50_ms: float
    itl_p95_ms: float
    retries: int = 0  # requests resent once after a kept-alive connection was closed under them
    error_samples: list[str] = field(default_factory=list)


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def stream_one(client: httpx.AsyncClient, url: str, payload: dict, headers: dict) -> RequestResult:
    started = time.perf_counter()
    ttft, last, chunks, usage_tokens, gaps = None, None, 0, None, []
    async with client.stream("POST", f"{url}/v1/chat/completions", json=payload, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"error event: {event['error']}")
            if event.get("usage"):
                usage_tokens = event["usage"]["completion_tokens"]
            choices = event.get("choices") or []
            if choices and choices[0].get("delta", {}).get("content"):
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - started
                else:
                    gaps.append(now - last)
                last = now
                chunks += 1
    tokens = usage_tokens if usage_tokens is not None else chunks
    if chunks and tokens > chunks:  # several tokens per chunk: share each gap between its tokens
        share = (tokens - 1) / max(1, len(gaps))
        gaps = [g / share for g in gaps for _ in range(round(share))] if share >= 1 else gaps
    return RequestResult(time.perf_counter() - started, ttft or 0.0, tokens, gaps)


def run_cell(url: str, requests: list[tuple[dict, dict]], concurrency: int, timeout_s: float = 600) -> CellResult:
    """Send (payload, headers) pairs with `concurrency` in flight; a closed loop, as users would."""

    async def main() -> CellResult:
        pending = list(reversed(requests))
        results: list[RequestResult] = []
        errors: list[str] = []
        retries: list[int] = []
        async with httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=concurrency + 4)) as client:
            async def user() -> None:
                while pending:
                    payload, headers = pending.pop()
                    for attempt in range(2):
                        try:
                            results.append(await stream_one(client, url, payload, headers))
                            break
                        except httpx.RemoteProtocolError as exc:
                            # A kept-alive connection the server closed just as it was reused (llama-server's
                            # HTTP library closes one after a fixed number of requests): nothing was sent,
                            # so a client retries it. Counted, and a second failure is an error.
                            if attempt == 0 and "without sending a response" in str(exc):
                                retries.append(1)
                                continue
                            errors.append(f"{type(exc).__name__}: {exc}"[:200])
                        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                            errors.append(f"{type(exc).__name__}: {exc}"[:200])
                            break

            started = time.perf_counter()
            await asyncio.gather(*(user() for _ in range(concurrency)))
            wall = time.perf_counter() - started
        return summarize(results, errors, wall, len(retries))

    return asyncio.run(main())


def summarize(results: list[RequestResult], errors: list[str], wall: float, retries: int = 0) -> CellResult:
    tokens = sum(r.tokens for r in results)
    gaps = [g for r in results for g in r.gaps]
    ttfts = [r.ttft for r in results]
    return CellResult(len(results) + len(errors), len(errors), tokens, wall, tokens / wall if wall else 0.0,
                      percentile(ttfts, 50), percentile(ttfts, 95), 1000 * percentile(gaps, 50),
                      1000 * percentile(gaps, 95), retries, errors[:3])


def run_in_process(generate: Callable[[list[dict], int], RequestResult], requests: list[list[dict]],
                   max_tokens: int) -> CellResult:
    """One request after another in this process (raw llama-cpp-python has no other mode)."""
    started = time.perf_counter()
    results = [generate(messages, max_tokens) for messages in requests]
    return summarize(results, [], time.perf_counter() - started)
