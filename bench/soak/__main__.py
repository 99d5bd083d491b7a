"""Soak under faults: `python -m bench.soak [--duration 600] [--rate-factor 2]`.

Starts a full stack on this machine: a private redis-server, the "frontier" upstream (our own
OpenAI-compatible server, upstream.py), and `tandem up` on the embedded model with the fallback,
the router-confidence escalation policy and Redis for the cache and the budget. Measures capacity
first (completions per second of the same traffic, closed loop, no faults), then drives streaming and
non-streaming chat, open loop, at `rate_factor` x that capacity for `duration` seconds. The traffic
mixes local prompts, prompts the router escalates to the fallback, and repeats (cache hits). Midway:
SIGKILL the base-model worker (at 35% of the run), SIGKILL Redis (50%), make the fallback slow (65%).

Reports what became of every request (load.py: completed, shed well-formed or not, failed with an
error the client was told, lost, garbled, duplicated), p50/p99 latency of what completed, and the RSS
of each service at start and end. Prints a table; writes JSON (default bench/results/soak.json).
Goal (fixed before any run): 0 lost, 0 garbled, every shed request well-formed, RSS within 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import yaml

from bench.soak.load import Outcome, send

LOCAL = ["Write a Python function that adds two numbers.", "Solve 12 + 30 and explain the sum.",
         "Write a bash script that lists files in a directory."]
ESCALATED = ["Tell me something nice.", "Say hello to a friend."]  # no keyword: the router is unsure
REPEATED = ["Name one primary color."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before {url} was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def request_body(rng: random.Random, max_tokens: int) -> dict:
    roll = rng.random()
    if roll < 0.2:
        text = rng.choice(REPEATED)
    else:
        text = f"{rng.choice(ESCALATED if roll < 0.4 else LOCAL)} ({uuid.uuid4().hex[:8]})"
    return {"model": "auto", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
            "temperature": 0, "stream": rng.random() < 0.5}


def services(up_pid: int) -> dict[str, int]:
    """name -> pid of the service processes `tandem up` runs now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == up_pid and b"-m" in cmdline:
            module = cmdline[cmdline.index(b"-m") + 1].decode()
            found[module.rsplit(".", 1)[-1]] = int(entry.name)
    return found


def rss_mib(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


async def calibrate(base_url: str, seconds: float, concurrency: int, max_tokens: int) -> float:
    """Completions per second of the soak's traffic, closed loop, no faults."""
    rng = random.Random(1)
    done = 0
    stop_at = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        async def user() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                if (await send(client, request_body(rng, max_tokens))).kind == "completed":
                    done += 1
        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def drive(base_url: str, rate: float, duration: float, max_tokens: int, faults: list, timeout_s: float
                ) -> tuple[list[Outcome], list[dict]]:
    """Open loop: Poisson arrivals at `rate`/s for `duration` s; `faults` are (fraction, name, action)."""
    rng = random.Random(2)
    outcomes: list[Outcome] = []
    fired: list[dict] = []
    limits = httpx.Limits(max_connections=2048, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as client:
        async def one(body: dict) -> None:
            outcomes.append(await send(client, body))

        started = time.perf_counter()

        async def timeline() -> None:
            for fraction, name, action in sorted(faults):
                await asyncio.sleep(max(0.0, started + fraction * duration - time.perf_counter()))
                await asyncio.to_thread(action)
                fired.append({"fault": name, "at_s": round(time.perf_counter() - started, 1)})
                print(f"  {time.perf_counter() - started:6.1f}s fault: {name}", flush=True)

        tasks = [asyncio.create_task(timeline())]
        while time.perf_counter() - started < duration:
            tasks.append(asyncio.create_task(one(request_body(rng, max_tokens))))
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    return outcomes, fired


def summarize(outcomes: list[Outcome]) -> dict:
    kinds = Counter(o.kind for o in outcomes)
    ids = Counter(o.completion_id for o in outcomes if o.completion_id)
    duplicated = sum(o.duplicated for o in outcomes) + sum(n - 1 for n in ids.values() if n > 1)
    latencies = sorted(o.latency_s for o in outcomes if o.kind == "completed")

    def pick(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) if latencies else None

    return {"sent": len(outcomes), "completed": kinds["completed"], "shed_well_formed": kinds["shed"],
            "shed_malformed": kinds["shed_malformed"], "failed_with_error": kinds["failed"], "lost": kinds["lost"],
            "garbled": kinds["garbled"], "duplicated": duplicated, "p50_s": pick(0.5), "p99_s": pick(0.99),
            "by_detail": dict(Counter(f"{o.kind}: {o.status} {o.detail}" for o in outcomes
                                      if o.kind != "completed").most_common()),
            "streams": sum(o.stream for o in outcomes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (CI: 60)")
    parser.add_argument("--rate-factor", type=float, default=2.0, help="load = this x the measured capacity")
    parser.add_argument("--calibrate-s", type=float, default=20.0, help="seconds of the capacity measurement")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout-s", type=float, default=120.0, help="client timeout: no answer by then is lost")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results" / "soak.json")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="tandem-soak-"))
    redis_port, upstream_port, fallback_port, port = free_port(), free_port(), free_port(), free_port()
    worker_port = free_port()
    procs: list[subprocess.Popen] = []
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no",
                              "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    procs.append(redis)
    upstream = subprocess.Popen([sys.executable, "-m", "bench.soak.upstream", "--port", str(upstream_port)])
    procs.append(upstream)
    config = {"redis_url": f"redis://127.0.0.1:{redis_port}/0", "port": port,
              "base_model": {"enabled": True, "port": worker_port},
              "fallback": {"enabled": True, "port": fallback_port,
                           "upstream_base_url": f"http://127.0.0.1:{upstream_port}/v1",
                           "model_map": {"gpt-4o": "gpt-4o"}, "daily_budget_usd": 1000.0, "request_timeout_s": 30},
              "router": {"request_deadline_s": 30.0,
                         "escalation": {"policies": [{"name": "router_confidence", "threshold": 0.5}]}}}
    (root / "up.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OPENAI_API_KEY": "soak-unused"}
    up = subprocess.Popen([sys.executable, "-m", "tandem.cli", "up", "--config", str(root / "up.yaml"),
                           "--artifacts", str(root / "artifacts")], env=env, start_new_session=True)
    procs.append(up)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"http://127.0.0.1:{upstream_port}/v1/models", 30, upstream)
        wait_ready(f"{base_url}/ready", 300, up)
        print(f"measuring capacity for {args.calibrate_s:.0f}s ...", flush=True)
        capacity = asyncio.run(calibrate(base_url, args.calibrate_s, 8, args.max_tokens))
        rate = args.rate_factor * capacity
        print(f"capacity {capacity:.2f} req/s; driving {rate:.2f} req/s for {args.duration:.0f}s", flush=True)
        before = {name: {"pid": pid, "rss_mib": rss_mib(pid)} for name, pid in services(up.pid).items()}

        def kill_worker() -> None:
            os.kill(services(up.pid)["base_model"], signal.SIGKILL)

        def slow_fallback() -> None:
            httpx.post(f"http://127.0.0.1:{upstream_port}/fault/delay", params={"seconds": 10})

        faults = [(0.35, "SIGKILL base_model worker", kill_worker),
                  (0.50, "SIGKILL redis-server", lambda: redis.send_signal(signal.SIGKILL)),
                  (0.65, "fallback upstream slow (10 s per answer)", slow_fallback)]
        outcomes, fired = asyncio.run(drive(base_url, rate, args.duration, args.max_tokens, faults, args.timeout_s))
        after = {name: {"pid": pid, "rss_mib": rss_mib(pid)} for name, pid in services(up.pid).items()}
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
    summary = summarize(outcomes)
    memory = {}
    for name, start in before.items():
        end = after.get(name, {})
        restarted = end.get("pid") != start["pid"]
        change = None if restarted or not end.get("rss_mib") else round(end["rss_mib"] / start["rss_mib"] - 1, 3)
        memory[name] = {"start_mib": round(start["rss_mib"], 1), "end_mib": round(end.get("rss_mib") or 0, 1),
                        "restarted": restarted, "change": change}
    goal = {"lost_zero": summary["lost"] == 0, "garbled_zero": summary["garbled"] == 0,
            "shed_all_well_formed": summary["shed_malformed"] == 0,
            "memory_within_10pct": all(m["change"] is None or abs(m["change"]) <= 0.10 for m in memory.values())}
    report = {"summary": summary, "memory": memory, "faults": fired, "goal": goal,
              "setup": {"duration_s": args.duration, "capacity_rps": round(capacity, 3), "rate_rps": round(rate, 3),
                        "rate_factor": args.rate_factor, "max_tokens": args.max_tokens, "mix": "50% streamed; 20% "
                        "repeats (cache), 20% escalated (router_confidence), 60% local", "cpus": os.cpu_count(),
                        "load_avg_1m": os.getloadavg()[0], "python": sys.version.split()[0],
                        "machine": platform.machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'sent':>6} {'done':>6} {'shed ok':>8} {'shed bad':>9} {'failed':>7} {'lost':>5} {'garbled':>8} "
          f"{'dup':>4} {'p50 s':>7} {'p99 s':>7}")
    s = summary
    print(f"{s['sent']:>6} {s['completed']:>6} {s['shed_well_formed']:>8} {s['shed_malformed']:>9} "
          f"{s['failed_with_error']:>7} {s['lost']:>5} {s['garbled']:>8} {s['duplicated']:>4} "
          f"{s['p50_s'] or 0:>7.2f} {s['p99_s'] or 0:>7.2f}")
    for detail, n in s["by_detail"].items():
        print(f"  {n:>5}  {detail}")
    print(f"\n{'service':<12} {'RSS start MiB':>14} {'RSS end MiB':>12}  note")
    for name, m in memory.items():
        note = "restarted (new process)" if m["restarted"] else f"{m['change']:+.1%}" if m["change"] is not None else ""
        print(f"{name:<12} {m['start_mib']:>14.1f} {m['end_mib']:>12.1f}  {note}")
    print(f"\ngoal: {', '.join(f'{k}={v}' for k, v in goal.items())} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
