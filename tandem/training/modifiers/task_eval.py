"""Task metric of base vs modifiers, through the evaluation harness against `tandem up`.

The candidates are served from a staging artifacts folder (the base they were trained on plus
each candidate adapter, marked servable there only), so no adapter is ever servable in the real
artifacts folder before it has been measured. `tandem up` starts on free ports; every model
answers the same items (the harness's `load_items`, `ask` and `score`, so prompts, sampling and
scorers are exactly `tandem eval`'s) and is stopped afterwards. Per-item scores are kept so base
and modifier can be compared pair-wise on the same items.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from tandem.common.manifest import Manifest
from tandem.training.modifiers.config import ModifierConfig, TaskSlice
from tandem.training.modifiers.gate import paired_difference, score_summary

log = logging.getLogger(__name__)
BASE_MODEL = "tandem-base"


def slice_items(task: TaskSlice) -> list:
    """The slice's test items: `where` filters on item meta, then `limit` takes an id-hash sample."""
    import hashlib

    from tandem.eval.datasets import load_items

    items = [it for it in load_items(task.suite, split="test")
             if all(it.meta.get(key) in values for key, values in task.where.items())]
    items.sort(key=lambda it: hashlib.sha256(f"{task.suite}:{it.id}".encode()).hexdigest())
    return items[: task.limit] if task.limit else items


def read_matrix(path: Path) -> dict:
    """A task matrix file as `task_matrix` writes it, or gzipped as the records under docs/modifiers/."""
    import gzip
    import json

    with (gzip.open if path.suffix == ".gz" else open)(path, "rt") as fh:
        return json.load(fh)


def score_recorded(item, row: dict) -> float:
    """A recorded answer (text and structured tool calls, as served) scored by today's scorer."""
    from tandem.eval.scoring import Reply, score

    return score(item, Reply(text=row.get("response") or "", tool_calls=row.get("tool_calls") or [])).value


def stage_artifacts(staging: Path, base_gguf: Path, adapters: dict[str, Path],
                    scales: dict[str, float] | None = None, guards: dict[str, float | None] | None = None,
                    groundings: dict[str, float | None] | None = None) -> str:
    """A manifest listing the base the adapters were trained on and each adapter as a servable
    candidate (at `scales[model]`, default 1.0: the LoRA scale it is served at; with the tool-fit
    guard's threshold `guards[model]`, default none); returns the base's sha256."""
    staging = staging.resolve()
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "base").mkdir(parents=True)
    (staging / "modifiers").mkdir()
    manifest = Manifest(staging)
    base_target = staging / "base" / base_gguf.name
    try:
        os.link(base_gguf, base_target)
    except OSError:
        shutil.copy2(base_gguf, base_target)
    base_sha256 = manifest.record("base", "base", [base_target]).files[0].sha256
    for model, path in adapters.items():
        target = staging / "modifiers" / Path(path).name
        shutil.copy2(path, target)
        manifest.record(model.removeprefix("tandem-"), "modifier", [target], base_sha256=base_sha256,
                        extra={"candidate": True}, lora_scale=(scales or {}).get(model, 1.0),
                        tool_fit_min_similarity=(guards or {}).get(model),
                        tool_args_min_grounding=(groundings or {}).get(model))
    return base_sha256


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving_pool(artifacts: Path, replicas: int, threads: int | None = None, slots: int = 1):
    """`replicas` independent `tandem up` stacks over `artifacts`; yields their OpenAI base URLs.

    With one slot per worker every answer is decoded alone, so it does not depend on which other
    requests shared its batch (llama.cpp's sums depend on batch shape), and replicas add throughput
    without adding that noise. It is not bit-for-bit reproducibility across processes: the base's
    answers to 30 BFCL irrelevance items, asked in two stacks, agreed on 29 (docs/MODIFIERS.md)."""
    with ExitStack() as stack:
        yield [stack.enter_context(serving(artifacts, threads=threads, slots=slots)) for _ in range(replicas)]


@contextmanager
def serving(artifacts: Path, ready_timeout_s: float = 300.0, threads: int | None = None, slots: int = 4):
    """`tandem up` on free ports for `artifacts`; yields the OpenAI base URL; stops it after."""
    port, base_port, mod_port = _free_port(), _free_port(), _free_port()
    cmd = [sys.executable, "-m", "tandem.cli", "up", "--artifacts", str(artifacts), "--port", str(port),
           f"base_model.port={base_port}", f"modifier_worker.port={mod_port}", f"base_model.slots={slots}",
           f"modifier_worker.slots={slots}", f"ready_timeout_s={ready_timeout_s}",
           "router.request_timeout_s=3600"]  # a loaded CPU box can take minutes per answer: measure, don't time out
    if threads:
        cmd += [f"base_model.n_threads={threads}", f"modifier_worker.n_threads={threads}"]
    proc = subprocess.Popen(cmd, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    # `tandem up` runs in its own session (so a Ctrl-C reaches it once, through us): a SIGTERM to this
    # process must unwind through `finally` too, or the services outlive a killed build.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if in_main_thread else None
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`tandem up` exited with code {proc.returncode} before it was ready")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"`tandem up` was not ready within {ready_timeout_s:.0f} s")
            time.sleep(1.0)
        yield f"{url}/v1"
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


async def _score_model(base_urls: list[str], model: str, items: list, task: TaskSlice,
                       concurrency: int) -> list[dict]:
    """Every item answered by `model`, items spread round-robin over the stacks at `base_urls`
    with at most `concurrency` requests in flight per stack."""
    from tandem.eval.client import ask, make_client
    from tandem.eval.scoring import BLOCKING_SUITES, Reply, score
    from tandem.eval.settings import Sampling

    clients = [make_client(url, "tandem", 3600.0) for url in base_urls]
    semaphores = [asyncio.Semaphore(concurrency) for _ in base_urls]
    sampling = Sampling(max_tokens=task.max_tokens)
    bar = tqdm(total=len(items), desc=f"{task.suite} {model}", unit="item")

    async def one(index: int, item) -> dict:
        stack = index % len(clients)
        async with semaphores[stack]:
            exchange = await ask(clients[stack], model, item, sampling)
        reply = Reply(text=exchange.text, tool_calls=exchange.tool_calls)
        result = (await asyncio.to_thread(score, item, reply)) if item.suite in BLOCKING_SUITES else score(item, reply)
        bar.update(1)
        return {"id": item.id, "score": result.value if exchange.error is None else 0.0, "error": exchange.error,
                "served_model": exchange.served_model, "completion_tokens": exchange.completion_tokens,
                "response": exchange.text[:2000], "tool_calls": exchange.tool_calls, "detail": result.detail}

    try:
        return list(await asyncio.gather(*(one(i, it) for i, it in enumerate(items))))
    finally:
        bar.close()
        for client in clients:
            await client.close()


def score_matrix(base_urls: str | list[str], slices: dict[str, TaskSlice], models: dict[str, list[str]],
                 confidence: float, cross_limit: int | None = None, concurrency: int = 4,
                 full_slices: frozenset[str] = frozenset(),
                 base_rows: dict[str, list[dict]] | None = None) -> dict[str, Any]:
    """Score `models[slice]` on each slice: {slice: {"n", "models": {model: summary}, "vs_base":
    {model: paired difference}, "items": {model: rows}}}. The base and the slice's own modifier
    (the first two models) answer every item; others answer the first `cross_limit` (an id-hash
    sample too, so the pairs with the base stay pairs), except on `full_slices`, where every model
    answers every item. Requests are spread over the stacks at `base_urls`. `base_rows`: the base's
    per-item rows of an earlier matrix (same base GGUF, same one-slot greedy serving) reused per
    slice instead of asking the base again: they must be a prefix of this slice's items (the same
    id-hash order), and are scored again by today's scorer; the base is asked only the items after it."""
    urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
    out: dict[str, Any] = {}
    for name, task in slices.items():
        items = slice_items(task)
        subsets = {m: items if k < 2 or cross_limit is None or name in full_slices else items[:cross_limit]
                   for k, m in enumerate(models[name])}

        reused = (base_rows or {}).get(name)
        base_reused, base_rescored = 0, 0
        if reused is not None:  # the earlier run may have answered more (or fewer) items of the same id-hash order
            by_id = {r["id"]: r for r in reused}
            wanted = subsets[BASE_MODEL]
            base_reused = next((k for k, it in enumerate(wanted) if it.id not in by_id), len(wanted))
            # a shorter earlier slice covers a prefix of this one: reuse it, ask the base only the rest
            if base_reused == 0 or any(it.id in by_id for it in wanted[base_reused:]):
                raise ValueError(f"the reused base rows of slice {name} are not this slice's items")
            # the answers are reused, their scores are not: a scorer fixed since is applied to both arms
            reused = [{**by_id[it.id], "score": score_recorded(it, by_id[it.id])} for it in wanted[:base_reused]]
            base_rescored = sum(r["score"] != by_id[r["id"]]["score"] for r in reused)
        asking = {m: (subsets[m][base_reused:] if m == BASE_MODEL else subsets[m]) for m in subsets}
        ask_models = [m for m in subsets if asking[m]]

        async def all_models(ask: list[str], subsets: dict, task: TaskSlice) -> list[list[dict]]:
            # the base and modifier workers answer in parallel
            return await asyncio.gather(*(_score_model(urls, m, subsets[m], task, concurrency) for m in ask))

        answered = dict(zip(ask_models, asyncio.run(all_models(ask_models, asking, task)), strict=True))
        per_model = {m: (reused or []) + answered.get(m, []) if m == BASE_MODEL else answered[m] for m in subsets}
        scores = {m: [r["score"] for r in rows] for m, rows in per_model.items()}
        base = scores.get(BASE_MODEL, [])
        log.info("%s: %s", name, {m: f"{sum(s):.0f}/{len(s)}" for m, s in scores.items()})
        out[name] = {
            "suite": task.suite, "where": task.where, "n": len(items),
            "errors": {m: sum(r["error"] is not None for r in rows) for m, rows in per_model.items()},
            "base_reused": base_reused, "base_rescored": base_rescored,
            "models": {m: score_summary(s, confidence) for m, s in scores.items()},
            "vs_base": {m: paired_difference(base[: len(s)], s, confidence)
                        for m, s in scores.items() if m != BASE_MODEL and base},
            "items": per_model,
        }
    return out


def compare_on_task(config: ModifierConfig, adapters: dict[str, Path]) -> dict[str, Any]:
    """Base vs this domain's candidate on the domain's task slice (one `tandem up`)."""
    from tandem.common.model_files import resolve_model_path

    staging = config.work_dir / "staging-artifacts"
    stage_artifacts(staging, resolve_model_path(config.base_model), adapters)
    with serving(staging) as url:
        matrix = score_matrix(url, {config.domain: config.evaluation.task},
                              {config.domain: [BASE_MODEL, *adapters]}, config.evaluation.confidence)
    return matrix[config.domain]
