"""Escalation through a real `tandem up` with a configured fallback (upstream: a base_model process
playing the frontier, behind a fault proxy) and a private Redis for the cache and the budget.

Policy escalation before generation (router confidence, streams included), explicit fallback
models, refusals with reasons (budget spent, upstream down) that serve the local answer, a
second router with an `after` policy, the Redis cache, and Redis killed mid-test.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import httpx
import openai
import pytest
import redis
import yaml

from tandem.common.manifest import Manifest, write_json
from tandem.services.escalation.features import ANSWER_NAMES
from tandem.services.escalation.models import ANSWER_ENTRY, DomainWeights, LogisticWeights
from tandem.services.fallback.budget import KEY_PREFIX, today
from tandem.training.escalation.labels import read_labels
from tests.conftest import free_port, start_tandem_up, stop_tandem_up
from tests.fallback.servers import RedisServer, start_service, stop_process

UNSURE = "Tell me something nice."  # no domain keyword: the keyword router is unsure (< 0.5)
SURE = "Write a Python function that reverses a string, with a unit test and a debug print."


@pytest.fixture(scope="module")
def private_redis():
    server = RedisServer().start()  # private: the last test kills it
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tandem(tmp_path_factory, proxy, private_redis):
    root = tmp_path_factory.mktemp("escalation-up")
    config = {"redis_url": private_redis.url,
              "fallback": {"enabled": True, "port": free_port(), "upstream_base_url": proxy.url,
                           "model_map": {"gpt-4o": "tandem-base"}, "daily_budget_usd": 5.0, "max_retries": 1,
                           "circuit_failures": 10, "request_timeout_s": 120},
              "router": {"escalation": {"policies": [{"name": "router_confidence", "threshold": 0.5}]}}}
    (root / "up.yaml").write_text(yaml.safe_dump(config))
    running = start_tandem_up(root / "artifacts", "--config", str(root / "up.yaml"))
    running.fallback_url = f"http://127.0.0.1:{config['fallback']['port']}"
    yield running
    stop_tandem_up(running)


@pytest.fixture(scope="module")
def client(tandem):
    return openai.OpenAI(base_url=tandem.base_url, api_key="unused", max_retries=0, timeout=120)


def chat(client, text: str, model: str = "auto", **kw):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **{"max_tokens": 4, "temperature": 0, **kw})


def metric(url: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in httpx.get(f"{url}/metrics").text.splitlines()
               if line.startswith(prefix))


def test_fallback_models_are_listed(client):
    assert {"auto", "tandem-base", "gpt-4o"} <= {m.id for m in client.models.list().data}


def test_explicit_fallback_model_escalates(client, tandem):
    raw = chat(client, f"Name a river. {uuid.uuid4().hex[:6]}", model="gpt-4o")
    assert raw.headers["x-tandem-escalated"] == "true"
    assert raw.headers["x-tandem-route"] == "gpt-4o"
    assert raw.headers["x-tandem-escalation-reason"] == "explicit_model"
    completion = raw.parse()
    assert completion.model == "gpt-4o" and completion.choices[0].message.content
    assert metric(tandem.url, 'tandem_escalations_total{reason="explicit_model",stage="explicit"}') >= 1


def test_unsure_router_escalates_before_generation(client, tandem):
    decision = httpx.post(f"{tandem.base_url}/route", json={"model": "auto", "messages": [
        {"role": "user", "content": UNSURE}]}).json()
    assert decision["escalate"] is True and decision["escalation_reason"] == "router_confidence"
    raw = chat(client, f"{UNSURE} {uuid.uuid4().hex[:6]}")
    assert raw.headers["x-tandem-escalated"] == "true"
    assert raw.headers["x-tandem-escalation-reason"] == "router_confidence"
    assert float(raw.headers["x-tandem-confidence"]) < 0.5
    sure = chat(client, SURE)
    assert sure.headers["x-tandem-escalated"] == "false" and sure.headers["x-tandem-route"] == "tandem-base"


def test_streams_escalate_before_the_first_byte(tandem):
    with httpx.stream("POST", f"{tandem.base_url}/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": f"{UNSURE} {uuid.uuid4().hex[:6]}"}],
            "max_tokens": 4, "temperature": 0, "stream": True}, timeout=120) as response:
        assert response.headers["x-tandem-escalated"] == "true"
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and '"model":"gpt-4o"' in events[0]


def test_spent_budget_refuses_with_a_reason_and_serves_the_local_answer(client, tandem, private_redis):
    store = redis.Redis.from_url(private_redis.url)
    store.set(KEY_PREFIX + today(), 1000.0)
    try:
        raw = chat(client, f"Name a mountain. {uuid.uuid4().hex[:6]}", model="gpt-4o")
        unsure = chat(client, f"{UNSURE} {uuid.uuid4().hex[:6]}")
    finally:
        store.delete(KEY_PREFIX + today())
    for answer in (raw, unsure):
        assert answer.headers["x-tandem-escalated"] == "false"
        assert answer.headers["x-tandem-escalation-refused"] == "budget_exhausted"
        assert answer.headers["x-tandem-route"] == "tandem-base"
        assert answer.parse().choices[0].message.content
    assert metric(tandem.url, 'tandem_escalation_refusals_total{reason="budget_exhausted"}') == 2


def test_upstream_down_refuses_and_serves_the_local_answer(client, proxy):
    proxy.down()
    try:
        raw = chat(client, f"{UNSURE} {uuid.uuid4().hex[:6]}")
    finally:
        proxy.up()
    assert raw.headers["x-tandem-escalation-refused"] == "upstream_unavailable"
    assert raw.headers["x-tandem-escalated"] == "false"
    assert raw.parse().choices[0].message.content


def test_redis_cache_answers_repeats(client, private_redis):
    text = f"Name a tree. {uuid.uuid4().hex[:6]}"
    first = chat(client, text, model="tandem-base")
    second = chat(client, text, model="tandem-base")
    assert (first.headers["x-tandem-cache"], second.headers["x-tandem-cache"]) == ("miss", "hit")
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert redis.Redis.from_url(private_redis.url).keys("tandem:cache:default:*")


@pytest.fixture(scope="module")
def after_router(tandem, tmp_path_factory):
    """A second router on the same worker and fallback, escalating after generation on answer confidence
    (a model for the general domain that escalates exactly the answers cut off at max_tokens: one
    structure check, end to end)."""
    artifacts = tmp_path_factory.mktemp("after-artifacts")
    n = len(ANSWER_NAMES)
    coef = [20.0 if name == "truncated" else 0.0 for name in ANSWER_NAMES]
    weights = LogisticWeights(feature_names=ANSWER_NAMES, mean=[0.0] * n, scale=[1.0] * n, dense_coef=coef,
                              intercept=-10.0)
    path = write_json(artifacts / "escalation" / "answer-confidence.json",
                      DomainWeights(models={"general": weights}).model_dump())
    Manifest(artifacts).record(ANSWER_ENTRY, "escalation", [path])
    settings = {"workers": [{"name": "base_model", "url": tandem.worker_url}], "artifacts_dir": str(artifacts),
                "cache": {"enabled": False},
                "escalation": {"fallback_url": tandem.fallback_url,
                               "policies": [{"name": "answer_confidence", "threshold": 0.5}]}}
    proc, url = start_service("tandem.services.router", settings, env=tandem.internal_env)
    yield url
    stop_process(proc)


def test_after_generation_policy_escalates_and_strips_logprobs(after_router):
    client = openai.OpenAI(base_url=f"{after_router}/v1", api_key="unused", max_retries=0, timeout=120)
    raw = chat(client, "Name a bird.", max_tokens=3)  # auto: the keyword router says general
    assert raw.headers["x-tandem-escalated"] == "true", "an answer cut off at max_tokens escalates"
    assert raw.headers["x-tandem-escalation-reason"] == "answer_confidence"
    assert raw.parse().choices[0].logprobs is None, "the client did not ask for logprobs"
    assert metric(after_router, 'tandem_escalations_total{reason="answer_confidence",stage="after"}') == 1
    finished = chat(client, "Name a bird.", max_tokens=200)
    assert finished.parse().choices[0].finish_reason == "stop"
    assert finished.headers["x-tandem-escalated"] == "false", "a finished answer stays local"
    stream = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Name a bird."}], max_tokens=4, temperature=0,
        stream=True)
    assert stream.headers["x-tandem-escalated"] == "false", "streams decide before the first byte, or not at all"
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)


def test_label_collection_through_the_router_keeps_local_answers_only(tandem, tmp_path):
    out = tmp_path / "labels.jsonl"
    result = subprocess.run([sys.executable, "-m", "tandem.cli", "escalation", "collect", "--suites",
                             "bfcl=1,arc_easy=2", "--split", "dev", "--base-url", tandem.base_url, "--model", "auto",
                             "--out", str(out)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    rows = read_labels(out)
    escalated = int(re.search(r"left out (\d+) of 3 items: escalated", result.stderr).group(1)) \
        if "escalated by the router" in result.stderr else 0
    assert len(rows) + escalated == 3, result.stderr
    assert all(r.route == "tandem-base" for r in rows), "a label is the local route's answer"
    for row in rows:
        assert row.token_logprobs and row.finish_reason in ("stop", "length", "tool_calls")
        if row.suite == "bfcl":
            assert row.tools and (row.tool_calls or row.response)


def test_redis_killed_mid_run_bypasses_the_cache(client, tandem, private_redis):
    private_redis.stop()
    raw = chat(client, f"Name a lake. {uuid.uuid4().hex[:6]}", model="tandem-base")
    assert raw.parse().choices[0].message.content
    assert metric(tandem.url, "tandem_cache_errors_total") >= 1
