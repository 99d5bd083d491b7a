"""A real `tandem up` (API key, Redis cache, a fallback in front of a local "frontier") and a real
Chromium from Debian's packages, driven by Playwright for Python."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import RunningTandem, free_port, start_tandem_up, stop_tandem_up
from tests.fallback.servers import RedisServer, shared_redis_url, start_service, stop_process

API_KEY = "playground-test-key"
CHROMIUM = os.environ.get("TANDEM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FRONTIER_SETTINGS = {"service_name": "frontier", "slots": 2, "ctx_per_slot": 1024, "max_queue": 8}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """CI's shared Redis when given, else a private one."""
    url = shared_redis_url()
    if url:
        yield url
        return
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def frontier() -> Iterator[str]:
    """The paid upstream stand-in: our own OpenAI-compatible server (the base model) on a free port."""
    proc, url = start_service("tandem.services.base_model", FRONTIER_SETTINGS)
    yield url
    stop_process(proc)


@dataclass
class Stack:
    tandem: RunningTandem
    fallback_url: str

    @property
    def url(self) -> str:
        return self.tandem.url


LORA_RANK = 4


@pytest.fixture(scope="module")
def code_modifier_artifacts(tmp_path_factory) -> Path:
    """An artifacts folder whose manifest lists a `code` modifier for the embedded base, so `auto` has a
    `tandem-code` route to take. The adapter is a real GGUF LoRA on every attention query projection,
    written with the `gguf` library as peft initialises one (B = 0: it leaves the base's output as it
    is): these tests are about the page, not about what the modifier learned."""
    import gguf
    import numpy as np

    from tandem.common.manifest import Manifest, sha256_file
    from tandem.common.model_files import embedded_model_path

    root = tmp_path_factory.mktemp("artifacts")
    base = embedded_model_path()
    reader = gguf.GGUFReader(str(base))
    lora = root / "modifiers" / "code.gguf"
    lora.parent.mkdir()
    writer = gguf.GGUFWriter(str(lora), "llama")
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 2.0 * LORA_RANK)
    rng = np.random.default_rng(0)
    for tensor in reader.tensors:
        if tensor.name.endswith("attn_q.weight"):
            n_in, n_out = (int(n) for n in tensor.shape[:2])  # ggml order: input features first
            writer.add_tensor(f"{tensor.name}.lora_a", (rng.standard_normal((LORA_RANK, n_in)) * 0.01).astype(np.float32))
            writer.add_tensor(f"{tensor.name}.lora_b", np.zeros((n_out, LORA_RANK), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    Manifest(root).record("code", "modifier", [lora], base_sha256=sha256_file(base),
                          config={"note": "untrained LoRA (B = 0) for the playground tests"})
    return root


@pytest.fixture(scope="module")
def served(code_modifier_artifacts, redis_url, frontier) -> Iterator[Stack]:
    artifacts = code_modifier_artifacts
    fallback_port = free_port()
    running = start_tandem_up(
        artifacts, f"router.api_keys=[{API_KEY}]", f"redis_url={redis_url}",
        # A namespace of its own, so answers cached by an earlier run against CI's shared Redis are not hits.
        f"router.cache.namespace=playground-{os.getpid()}",
        "fallback.enabled=true", f"fallback.upstream_base_url={frontier}/v1", "fallback.model_map={gpt-4o: tandem-base}",
        f"fallback.port={fallback_port}")
    yield Stack(running, f"http://127.0.0.1:{fallback_port}")
    stop_tandem_up(running)


@dataclass
class BrowserLog:
    """Console errors and uncaught page errors, as (kind, text)."""

    entries: list[tuple[str, str]] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [text for kind, text in self.entries if kind in ("error", "pageerror")]


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser_context, served):
    """One tab on the playground, shared by the module's tests (they run in file order); its log is `page.log`."""
    tab = browser_context.new_page()
    log = BrowserLog()
    tab.on("console", lambda message: log.entries.append((message.type, message.text)))
    tab.on("pageerror", lambda error: log.entries.append(("pageerror", str(error))))
    tab.log = log
    tab.set_default_timeout(120_000)
    yield tab
    tab.close()
