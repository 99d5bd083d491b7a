"""Drive docker-compose.yml for the compose test: one project with its own name, ports, secrets and
artifacts, brought up with the test override (deploy/compose/test.yml) and torn down with its
volumes. Works with Debian's docker-compose 1.29 and with the `docker compose` v2 plugin."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Everything but Grafana, which no reachable registry has here; its dashboards are checked by
# evaluating every panel query through Prometheus instead.
SERVICES = ["redis", "frontier", "base_model", "modifier_worker", "fallback", "router", "prometheus"]
LOCAL_IMAGES = {"BASE_IMAGE": "tandem-local/python:bookworm", "REDIS_IMAGE": "tandem-local/redis:bookworm",
                "PROMETHEUS_IMAGE": "tandem-local/prometheus:bookworm"}


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("neither `docker compose` nor docker-compose is installed (deploy/compose-test.sh installs one)")


@dataclass
class ComposeStack:
    project: str
    artifacts: Path
    secrets_dir: Path
    router_port: int
    prometheus_port: int
    image: str = "tandem:compose-test"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def env(self) -> dict[str, str]:
        images = {k: os.environ.get(k, v) for k, v in LOCAL_IMAGES.items()}
        return {**os.environ, **images, "TANDEM_IMAGE": self.image, "TANDEM_ARTIFACTS_DIR": str(self.artifacts),
                "TANDEM_SECRETS_DIR": str(self.secrets_dir), "TANDEM_PORT": str(self.router_port),
                "PROMETHEUS_PORT": str(self.prometheus_port), "COMPOSE_PROJECT_NAME": self.project}

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = [*compose_command(), "-p", self.project, "-f", str(ROOT / "docker-compose.yml"),
               "-f", str(ROOT / "deploy" / "compose" / "test.yml"), *args]
        done = subprocess.run(cmd, cwd=ROOT, env=self.env(), check=False, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode:
            logs = subprocess.run([*cmd[:cmd.index(args[0])], "logs", "--tail", "30"], cwd=ROOT, env=self.env(),
                                  check=False, capture_output=True, text=True, timeout=60).stdout
            raise RuntimeError(f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}\n"
                               f"{logs[-6000:]}")
        return done

    def write_secrets(self) -> None:
        """Secret files readable by the containers' user (uid 10001): bind-mounted files keep their mode."""
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        for name in ("internal_token", "fallback_api_key"):
            path = self.secrets_dir / name
            path.write_text(secrets.token_hex(24))
            path.chmod(0o644)
        # The artifacts folder is the mount's root: it must be readable by that user too.
        for path in [self.artifacts, *self.artifacts.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    def build(self) -> None:
        """The wheelhouse (from this checkout's pyproject.toml, so it matches the code), then the image."""
        started = time.monotonic()
        _run([str(ROOT / "deploy" / "images" / "wheels.sh")], {"PIP": str(Path(sys.executable).with_name("pip"))})
        base = os.environ.get("BASE_IMAGE", LOCAL_IMAGES["BASE_IMAGE"])
        _run(["docker", "build", "--force-rm", "--build-arg", f"BASE_IMAGE={base}", "-t", self.image, "."])
        self.timings["image build"] = time.monotonic() - started

    def up(self) -> None:
        started = time.monotonic()
        self.compose("up", "-d", "--no-build", *SERVICES)
        self.wait_ready(timeout=420)
        self.timings["stack up"] = time.monotonic() - started

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ready", timeout=3).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(f"router not ready after {timeout}s:\n{self.compose('ps', check=False).stdout}\n"
                           f"{self.compose('logs', '--tail', '40', check=False).stdout}")

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def exec(self, service: str, *cmd: str) -> str:
        return self.compose("exec", "-T", service, *cmd).stdout

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "10", check=False)

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes still labelled with this project."""
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind, cmd in (("containers", ["docker", "ps", "-aq"]), ("networks", ["docker", "network", "ls", "-q"]),
                          ("volumes", ["docker", "volume", "ls", "-q"])):
            out = subprocess.run([*cmd, "--filter", label], capture_output=True, text=True, check=True).stdout
            found[kind] = out.split()
        return found


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> None:
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
