"""The internal credential: in a running stack no port but the router's serves chat without it,
internal services listen on loopback only, and no secret is on any command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import free_port, start_tandem_up, stop_tandem_up
from tests.gateway.servers import BrokenServer
from tests.gateway.test_gateway_errors import assert_openai_error

API_KEY = "stack-key-0123456789abcdef"
CHAT = {"model": "tandem-base", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`tandem up --host 0.0.0.0` (as the Dockerfile runs it) with API keys and a fallback."""
    root = tmp_path_factory.mktemp("internal")
    with BrokenServer(b"{}", models=("gpt-4o",)) as upstream:
        fallback_port = free_port()
        config = {"router": {"api_keys": [API_KEY]},
                  "fallback": {"enabled": True, "port": fallback_port, "upstream_base_url": f"{upstream.url}/v1"}}
        (root / "up.yaml").write_text(yaml.safe_dump(config))
        running = start_tandem_up(root / "artifacts", "--host", "0.0.0.0", "--config", str(root / "up.yaml"))
        running.fallback_url = f"http://127.0.0.1:{fallback_port}"
        yield running
        stop_tandem_up(running)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _listen_addresses(port: int) -> set[str]:
    """Local addresses listening on `port`, from /proc/net/tcp (state 0A: LISTEN)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                addresses.add(address)
    return addresses


def test_only_the_router_serves_chat_without_the_internal_token(stack):
    router = httpx.post(f"{stack.url}/v1/chat/completions", json=CHAT, timeout=120,
                        headers={"authorization": f"Bearer {API_KEY}"})
    assert router.status_code == 200, router.text
    for url, model in ((stack.worker_url, "tandem-base"), (stack.fallback_url, "gpt-4o")):
        for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"},
                        {"authorization": f"Bearer {API_KEY}"}):
            response = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": model}, headers=headers)
            assert_openai_error(response, 401, "invalid_api_key")
        assert_openai_error(httpx.get(f"{url}/v1/models"), 401)
        assert httpx.get(f"{url}/health").status_code == 200  # probes stay open
    assert_openai_error(httpx.get(f"{stack.fallback_url}/v1/budget"), 401)
    with_token = httpx.post(f"{stack.worker_url}/v1/chat/completions", json=CHAT, timeout=120,
                            headers=stack.internal_headers)
    assert with_token.status_code == 200, with_token.text


def test_internal_services_listen_on_loopback_only(stack):
    router_port = int(stack.url.rsplit(":", 1)[1])
    assert _listen_addresses(router_port) == {"00000000"}, "the router binds 0.0.0.0 as asked"
    for url in (stack.worker_url, stack.fallback_url):
        assert _listen_addresses(int(url.rsplit(":", 1)[1])) == {"0100007F"}, url


def test_no_secret_on_any_command_line(stack):
    children = _children(stack.proc.pid)
    assert len(children) == 3, children  # base_model, fallback, router
    for pid in children:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert API_KEY.encode() not in cmdline
        assert stack.internal_token.encode() not in cmdline
        assert b"api_keys" not in cmdline


def test_an_internal_service_refuses_a_public_bind_without_a_token():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_INTERNAL_")}
    result = subprocess.run([sys.executable, "-m", "tandem.services.base_model", "--host", "0.0.0.0",
                             "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "TANDEM_INTERNAL_TOKEN" in result.stderr


def test_a_short_internal_token_is_refused():
    env = {**os.environ, "TANDEM_INTERNAL_TOKEN": "short"}
    result = subprocess.run([sys.executable, "-m", "tandem.services.base_model", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "at least 16 characters" in result.stderr
