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


@pytest.fixture(scope="module")
def served(tmp_path_factory, redis_url, frontier) -> Iterator[Stack]:
    artifacts = Path(os.environ.get("TANDEM_TEST_PLAYGROUND_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
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
