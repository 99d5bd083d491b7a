"""The deployed stack, run for real (`make compose-test`): docker-compose.yml with the test override,
checked through the router with the official `openai` client, then every dashboard panel query
evaluated through the stack's Prometheus, then torn down.

Faults, in order: answers stream; a repeat is a cache hit from Redis across a router container
restart; killing the modifier_worker's process gives 503 with Retry-After, then the restart policy
brings it back; an escalation reaches the fallback container and its upstream (a real
OpenAI-compatible server of our own), and with that upstream stopped the local answer is served
with the refusal's reason. Needs dockerd, a compose and the base images (deploy/compose-test.sh
prepares them); the `compose` marker keeps it out of `make test`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.deploy.compose_stack import ComposeStack

pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ASK = [{"role": "user", "content": "Write a Python function that adds two numbers."}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    artifacts = Path(os.environ.get("TANDEM_COMPOSE_ARTIFACTS", ROOT / "build" / "compose-artifacts"))
    if not (artifacts / "manifest.json").exists():
        from tests.deploy.compose_artifacts import build_small_artifacts
        started = time.monotonic()
        build_small_artifacts(artifacts, tmp_path_factory.mktemp("compose-work"))
        print(f"\nsmall artifacts built in {time.monotonic() - started:.0f}s into {artifacts}")
    running = ComposeStack(project=f"tandemct{os.getpid()}", artifacts=artifacts,
                           secrets_dir=tmp_path_factory.mktemp("compose-secrets"), router_port=_free_port(),
                           prometheus_port=_free_port())
    running.write_secrets()
    try:
        running.build()
        running.up()
        print(f"timings: {json.dumps({k: round(v) for k, v in running.timings.items()})}")
        yield running
    finally:
        running.down()


@pytest.fixture(scope="module")
def client(stack) -> openai.OpenAI:
    # Generous timeout: four llama.cpp processes share this host's cores with whatever else runs.
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key="unused", max_retries=0, timeout=300)


def test_answers_stream_through_the_router(client):
    chunks = list(client.chat.completions.create(model="auto", messages=ASK, max_tokens=24, stream=True,
                                                 temperature=0))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and text.strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length") or chunks[-2].choices[0].finish_reason


def test_repeat_is_a_cache_hit_from_redis_across_a_router_restart(stack, client):
    ask = [{"role": "user", "content": f"Name a colour. ({time.time_ns()})"}]
    first = client.chat.completions.with_raw_response.create(model="tandem-base", messages=ask, max_tokens=8,
                                                             temperature=0)
    assert first.headers["x-tandem-cache"] == "miss"
    assert int(stack.exec("redis", "redis-cli", "dbsize").strip()) > 0

    stack.compose("restart", "-t", "10", "router")
    stack.wait_ready()
    second = client.chat.completions.with_raw_response.create(model="tandem-base", messages=ask, max_tokens=8,
                                                              temperature=0)
    assert second.headers["x-tandem-cache"] == "hit"  # the new router process has an empty memory
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content


def test_killed_modifier_worker_gives_503_then_the_restart_policy_recovers_it(stack, client):
    models = [m.id for m in client.models.list().data]
    assert "tandem-code" in models, models
    container = stack.container("modifier_worker")
    pid = int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                             text=True, check=True).stdout)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)  # the process dies, as in a crash (`docker kill` would count as a stop)

    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="tandem-code", messages=ASK, max_tokens=4,
                                       extra_headers={"Cache-Control": "no-cache"})
    assert failed.value.status_code == 503
    assert int(failed.value.response.headers["retry-after"]) >= 1
    assert failed.value.body["code"] == "overloaded"

    def answers() -> bool:
        try:
            client.chat.completions.create(model="tandem-code", messages=ASK, max_tokens=4,
                                           extra_headers={"Cache-Control": "no-cache"})
            return True
        except openai.APIStatusError:
            return False
    _until(answers, 240, "tandem-code answering again after the kill", every=2)
    restarts = subprocess.run(["docker", "inspect", "-f", "{{.RestartCount}}", container], capture_output=True,
                              text=True, check=True).stdout
    assert int(restarts) >= 1
    print(f"\nmodifier_worker killed: 503 with Retry-After {failed.value.response.headers['retry-after']}s; "
          f"answering again {time.monotonic() - killed_at:.0f}s later (restarts: {int(restarts)})")


def _frontier_requests(stack) -> float:
    text = stack.exec("frontier", "python", "-c", "import urllib.request; "
                      "print(urllib.request.urlopen('http://127.0.0.1:8104/metrics').read().decode())")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tandem_requests_total{") and 'status="200"' in line)


def test_escalation_reaches_the_fallback_container_and_its_upstream(stack, client):
    before = _frontier_requests(stack)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, max_tokens=16)
    assert raw.headers["x-tandem-escalated"] == "true" and raw.headers["x-tandem-route"] == "gpt-4o"
    assert raw.parse().choices[0].message.content
    streamed = list(client.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=16, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).strip()
    assert _frontier_requests(stack) >= before + 2

    # Upstream down: the fallback retries, refuses, and the router serves the local answer, saying why.
    stack.compose("stop", "-t", "5", "frontier")
    try:
        refused = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, max_tokens=8)
        assert refused.headers["x-tandem-escalated"] == "false"
        assert refused.headers["x-tandem-escalation-refused"] == "upstream_unavailable"
        assert refused.parse().choices[0].message.content is not None
    finally:
        stack.compose("start", "frontier")


def test_feedback_is_counted(stack, client):
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=ASK, max_tokens=4,
                                                           extra_headers={"Cache-Control": "no-cache"})
    body = {"request_id": raw.headers["x-tandem-request-id"], "correct_domain": "code", "rating": 1}
    first = httpx.post(f"{stack.url}/v1/feedback", json=body, timeout=10)
    assert first.status_code == 200 and first.json()["counted"] == ["domain", "rating"]
    assert httpx.post(f"{stack.url}/v1/feedback", json=body, timeout=10).status_code == 409


def _has_data(prometheus: str, expr: str) -> bool:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert reply["status"] == "success", (expr, reply)
    values = [float(r["value"][1]) for r in reply["data"]["result"]]
    return any(math.isfinite(v) for v in values)


def test_every_dashboard_panel_query_returns_data(stack, client):
    # Rate panels cover the last minutes: give them fresh traffic (a cache miss, then its hit).
    ask = [{"role": "user", "content": f"Name a fruit. ({time.time_ns()})"}]
    for _ in range(2):
        client.chat.completions.create(model="auto", messages=ask, max_tokens=4, temperature=0)
    panels = [(path.name, panel["title"], [t["expr"] for t in panel["targets"]])
              for path in sorted(DASHBOARDS.glob("*.json")) for panel in json.loads(path.read_text())["panels"]]
    assert panels
    missing: list[str] = []

    def all_have_data() -> bool:
        missing[:] = [f"{name}: {title}" for name, title, exprs in panels
                      if not any(_has_data(stack.prometheus, e) for e in exprs)]
        return not missing
    try:
        _until(all_have_data, 120, "every panel with data", every=5)
    finally:
        print(f"\npanels with data: {len(panels) - len(missing)}/{len(panels)}")
        for line in missing:
            print(f"  no data: {line}")
    assert not missing


def test_teardown_leaves_no_containers_networks_or_volumes(stack):
    stack.down()
    assert stack.leftovers() == {"containers": [], "networks": [], "volumes": []}
