"""The systems the serving benchmark compares, each started with the same model, adapters, threads and
slots: Tandem (router end to end, `tandem up`), llama-server built from the same llama.cpp sources
(adapters selected per request through its `lora` field), and raw llama-cpp-python in this process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.serving.client import RequestResult
from tests.conftest import free_port, wait_for
from tests.fallback.servers import stop_process


@dataclass
class HttpSystem:
    name: str
    url: str
    adapter_ids: dict[str, int] = field(default_factory=dict)  # llama-server: model name -> --lora index

    def request(self, model: str, messages: list[dict], max_tokens: int) -> tuple[dict, dict]:
        payload = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                   "stream": True, "stream_options": {"include_usage": True}}
        if self.adapter_ids:  # llama-server serves one model; the adapter is chosen per request
            payload["lora"] = [{"id": i, "scale": 1.0 if name == model else 0.0} for name, i in self.adapter_ids.items()]
        # no-cache: Tandem's response cache would answer repeats without generating
        return payload, {"Cache-Control": "no-cache"}


@contextmanager
def tandem(artifacts: Path | None, slots: int, extra: list[str]) -> Iterator[HttpSystem]:
    port = free_port()
    cmd = [sys.executable, "-m", "tandem.cli", "up", "--port", str(port), "--artifacts", str(artifacts or "/nonexistent"),
           f"base_model.port={free_port()}", f"modifier_worker.port={free_port()}", "default_bundle=false",
           f"base_model.slots={slots}", f"modifier_worker.slots={slots}", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/ready", proc=proc, timeout=300)
        yield HttpSystem("tandem", f"http://127.0.0.1:{port}")
    finally:
        stop_process(proc)


@contextmanager
def llama_server(gguf: Path, adapters: dict[str, Path], threads: int, slots: int, ctx_per_slot: int) -> Iterator[HttpSystem]:
    from bench.serving.llama_server_build import llama_server_binary

    port = free_port()
    cmd = [str(llama_server_binary()), "-m", str(gguf), "--port", str(port), "-np", str(slots),
           "-c", str(slots * ctx_per_slot), "-t", str(threads), "--no-repack", "--no-webui"]
    for path in adapters.values():
        cmd += ["--lora", str(path)]
    if adapters:
        cmd.append("--lora-init-without-apply")  # every adapter at scale 0 unless a request names it
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", proc=proc, timeout=300)
        yield HttpSystem("llama-server", f"http://127.0.0.1:{port}", {m: i for i, m in enumerate(adapters)})
    finally:
        stop_process(proc)


@contextmanager
def raw_llama_cpp(gguf: Path, threads: int) -> Iterator:
    """A generate(messages, max_tokens) function on llama_cpp.Llama in this process."""
    from tandem.services.engine.llama_loader import load_llama

    llm = load_llama(str(gguf), n_ctx=4096, n_threads=threads, n_threads_batch=threads)

    def generate(messages: list[dict], max_tokens: int) -> RequestResult:
        llm.reset()  # no prefix reuse between requests, as in the HTTP cells
        started, ttft, last, count, gaps = time.perf_counter(), None, None, 0, []
        for chunk in llm.create_chat_completion(messages, max_tokens=max_tokens, temperature=0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - started
                else:
                    gaps.append(now - last)
                last, count = now, count + 1
        return RequestResult(time.perf_counter() - started, ttft or 0.0, count, gaps)

    yield generate
