"""Fixtures shared by every test area: free ports and a real `tandem up` on the embedded model."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@dataclass
class RunningTandem:
    proc: subprocess.Popen
    url: str
    worker_url: str
    modifier_url: str
    internal_token: str  # what the workers and the fallback require (the router holds it)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def internal_headers(self) -> dict[str, str]:
        """Headers to call a worker of this stack directly, as the router does."""
        return {"authorization": f"Bearer {self.internal_token}"}

    @property
    def internal_env(self) -> dict[str, str]:
        """Environment for another process (a second router) that calls this stack's workers."""
        return {**os.environ, "TANDEM_INTERNAL_TOKEN": self.internal_token}


def start_tandem_up(artifacts: Path, *extra: str) -> RunningTandem:
    port, worker_port, modifier_port = free_port(), free_port(), free_port()
    cmd = [sys.executable, "-m", "tandem.cli", "up", "--port", str(port), "--artifacts", str(artifacts),
           f"base_model.port={worker_port}", f"modifier_worker.port={modifier_port}",
           "default_bundle=false", *extra]  # exactly `artifacts`, never the bundled default
    token = secrets.token_urlsafe(24)  # set here so that tests can reach the workers directly
    proc = subprocess.Popen(cmd, start_new_session=True, env={**os.environ, "TANDEM_INTERNAL_TOKEN": token})
    running = RunningTandem(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{worker_port}",
                            f"http://127.0.0.1:{modifier_port}", token)
    try:
        wait_for(f"{running.url}/ready", proc=proc)
    except Exception:
        stop_tandem_up(running)
        raise
    return running


def stop_tandem_up(running: RunningTandem) -> None:
    if running.proc.poll() is None:
        running.proc.terminate()
        try:
            running.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()


@pytest.fixture(scope="session")
def tandem_up(tmp_path_factory) -> RunningTandem:
    """`tandem up` on the embedded default model with no artifacts, shared by the session."""
    running = start_tandem_up(tmp_path_factory.mktemp("no-artifacts"))
    yield running
    stop_tandem_up(running)
