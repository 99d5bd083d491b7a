"""The shipped `configs/escalation/up-fallback.yaml`, run by `tandem up` as a user would: plain chat
stays local, a failing tool call still goes to the fallback.

The stack: a trained domain router (the shipped recipe on a slice of its data), the escalation
models fitted and calibrated from the committed labels (`docs/escalation/`), the embedded base,
a frontier stand-in (a second base_model process behind a fault proxy) as the fallback's upstream,
and a private Redis. Only the environment (ports, Redis, upstream URL, model map) differs from
the shipped file; its escalation policies are used as shipped.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tandem.common.wire import ChatCompletionRequest
from tandem.services.escalation.answers import Answer
from tandem.services.escalation.features import structure_failures
from tandem.training.escalation.calibrate import calibrate_threshold
from tandem.training.escalation.train import train_escalation_models
from tandem.training.escalation.training_cli import DEFAULT_TARGET
from tests.conftest import free_port, start_tandem_up, stop_tandem_up
from tests.fallback.servers import RedisServer

# Setup trains a router on a data slice and starts the whole stack: minutes on an idle 2-core box,
# and it passed the project's 900 s default once on a loaded one but not the second time.
pytestmark = pytest.mark.timeout(2400)
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "configs" / "escalation" / "up-fallback.yaml"
LABELS = ROOT / "docs" / "escalation"
PLAIN_CHAT = ["hi", "Hello!", "hey, how are you?", "good morning :)", "thanks!", "Thank you so much, that helped.",
              "lol ok", "how was your weekend?", "Nice to meet you.", "see you tomorrow, bye"]
FLIGHT_TOOL = {"type": "function", "function": {
    "name": "book_flight", "description": "Book a one-way flight.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["origin", "destination", "date"],
                   "properties": {"origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                  "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                  "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}}}}}
FLIGHT_ASK = "Book me a flight from Oslo to Rome on the 3rd of May next year, the cheapest one."


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from tandem.training.routing.train import run
    from tests.routing.routing_helpers import small_config

    out = tmp_path_factory.mktemp("shipped-artifacts")
    run(small_config(out, per_source=40), measure_latency=False)
    train_escalation_models(LABELS / "labels_train.jsonl.gz", LABELS / "labels_dev.jsonl.gz", out)
    calibrate_threshold(LABELS / "labels_dev.jsonl.gz", out, DEFAULT_TARGET)
    return out


@pytest.fixture(scope="module")
def stack(artifacts, proxy, tmp_path_factory):
    redis = RedisServer().start()
    shipped = yaml.safe_load(SHIPPED.read_text())
    config = yaml.safe_load(SHIPPED.read_text())
    config["redis_url"] = redis.url
    config["fallback"].update(port=free_port(), upstream_base_url=proxy.url, model_map={"gpt-4o": "tandem-base"})
    assert config["router"]["escalation"] == shipped["router"]["escalation"], "the policies run as shipped"
    path = tmp_path_factory.mktemp("shipped-config") / "up.yaml"
    path.write_text(yaml.safe_dump(config))
    running = start_tandem_up(artifacts, "--config", str(path))
    yield running
    stop_tandem_up(running)
    redis.stop()


@pytest.fixture(scope="module")
def client(stack):
    return openai.OpenAI(base_url=stack.base_url, api_key="unused", max_retries=0, timeout=300)


def escalations(stack) -> float:
    text = httpx.get(f"{stack.url}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("tandem_escalations_total{"))


@pytest.mark.slow
def test_plain_chat_is_never_escalated(client, stack):
    for text in PLAIN_CHAT:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": text}], max_tokens=32, temperature=0)
        reason = raw.headers.get("x-tandem-escalation-reason")
        assert raw.headers["x-tandem-escalated"] == "false", (text, raw.headers["x-tandem-domain"], reason)
        assert raw.parse().choices[0].message.content
    assert escalations(stack) == 0


@pytest.mark.slow
def test_a_failing_tool_call_is_still_escalated(client, stack):
    messages = [{"role": "user", "content": FLIGHT_ASK}]
    local = httpx.post(f"{stack.worker_url}/v1/chat/completions", headers=stack.internal_headers, timeout=300,
                       json={"model": "tandem-base", "messages": messages, "tools": [FLIGHT_TOOL],
                             "max_tokens": 96, "temperature": 0, "seed": 0}).json()
    message = local["choices"][0]["message"]
    request = ChatCompletionRequest(model="auto", messages=messages, tools=[FLIGHT_TOOL])
    failures = structure_failures(request, Answer(text=message.get("content") or "",
                                                  tool_calls=message.get("tool_calls") or []))
    assert failures or not message.get("tool_calls"), f"the local answer must fail for this test: {message}"

    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, tools=[FLIGHT_TOOL],
                                                           max_tokens=96, temperature=0, seed=0)
    assert raw.headers["x-tandem-domain"] == "automation"
    assert raw.headers["x-tandem-escalated"] == "true"
    assert raw.headers["x-tandem-escalation-reason"] in ("difficulty", "answer_structure", "answer_confidence")
    assert raw.headers["x-tandem-route"] == "gpt-4o"
    assert escalations(stack) == 1
