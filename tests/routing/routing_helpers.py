"""Helpers for the routing tests: the small-slice recipe, and `tandem up` on a given artifacts folder."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tandem.common.recipe_config import load_config
from tandem.training.routing.config import RouterRecipeConfig

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "routing" / "router.yaml"


def small_config(artifacts_dir: Path, per_source: int = 30) -> RouterRecipeConfig:
    """The shipped recipe with every source cut to `per_source` items and few template variants."""
    full = load_config(RouterRecipeConfig, RECIPE)
    overrides = [f"sources.{name}.limit={per_source}" for name in full.sources]
    overrides += ["templates.per_template=1", f"artifacts_dir={artifacts_dir}"]
    return load_config(RouterRecipeConfig, RECIPE, overrides)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tandem_up(artifacts: Path, timeout: float = 240.0) -> tuple[subprocess.Popen, str]:
    """`tandem up` (router + base_model on the embedded GGUF) serving `artifacts`; returns (process, url)."""
    port, worker_port = _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tandem.cli", "up", "--port", str(port), "--artifacts",
                             str(artifacts), f"base_model.port={worker_port}", f"modifier_worker.port={_free_port()}"],
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tandem up exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    raise TimeoutError(f"tandem up not ready after {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
