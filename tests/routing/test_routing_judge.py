"""Judge sampling (issue 16, 3c): a share of live `auto` requests labelled by a fallback model.

Real processes over real HTTP: a base_model worker (the user's answers), the fallback service in
front of a scripted OpenAI-compatible upstream of our own (the "judge": it records what it is sent and
answers what a test scripts, or holds the call), routers with judge sampling at rate 1.0, a private
Redis (the fallback's budget; the judge cap shared by two routers) and a real Prometheus scraping the
main router, through which the dashboard's judge panels are evaluated.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tandem.services.fallback.budget import KEY_PREFIX, today
from tandem.services.router.judge import UNPARSED, parse_verdict
from tests.conftest import free_port, wait_for
from tests.fallback.servers import RedisServer, start_service, stop_process
from tests.serving.metrics_helpers import sample

DOMAINS = ["code", "reasoning", "automation", "general"]
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "tandem-routing.json"
CODE_ASK = "Write a Python function that reverses a string."  # the keyword router: code
VERDICTS = "tandem_judge_verdicts_total"
SKIPPED = "tandem_judge_skipped_total"


class ScriptedJudge:
    """An OpenAI-compatible upstream in a thread: records every chat payload, answers `answer` as the
    message content, or holds each call until `release()` when `hold` is set."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.answer = '{"domain": "code"}'
        self.payloads: list[dict] = []
        self.hold = False
        self.holding = 0
        self._released = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start_holding(self) -> None:
        self._released.clear()
        self.hold = True

    def release(self) -> None:
        self.hold = False
        self._released.set()

    def _app(self) -> Starlette:
        async def models(_: Request) -> JSONResponse:
            return JSONResponse({"object": "list", "data": [{"id": "scripted-judge", "object": "model"}]})

        async def chat(request: Request) -> JSONResponse:
            payload = await request.json()
            self.payloads.append(payload)
            if self.hold:
                self.holding += 1
                try:
                    await asyncio.to_thread(self._released.wait, 60)
                finally:
                    self.holding -= 1
            return JSONResponse({
                "id": "chatcmpl-judge", "object": "chat.completion", "created": int(time.time()),
                "model": payload["model"], "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": self.answer}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 6, "total_tokens": 56}})

        return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])

    def up(self) -> ScriptedJudge:
        self._server = uvicorn.Server(uvicorn.Config(self._app(), host="127.0.0.1", port=self.port,
                                                     log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def down(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def judge_upstream():
    server = ScriptedJudge().up()
    yield server
    server.down()


@pytest.fixture(scope="module")
def private_redis():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker():
    proc, url = start_service("tandem.services.base_model", {"slots": 2, "ctx_per_slot": 1024, "max_queue": 16})
    yield url
    stop_process(proc)


@pytest.fixture(scope="module")
def fallback(judge_upstream, private_redis):
    settings = {"upstream_base_url": judge_upstream.url, "model_map": {"judge-model": "scripted-judge"},
                "prices": {"judge-model": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}},
                "daily_budget_usd": 5.0, "redis_url": private_redis.url, "max_retries": 0, "request_timeout_s": 60}
    proc, url = start_service("tandem.services.fallback", settings)
    yield proc, url
    stop_process(proc)


def _router_settings(worker: str, fallback_url: str, **judge) -> dict:
    return {"workers": [{"name": "base_model", "url": worker}], "domain_router": "keywords",
            "cache": {"enabled": False}, "canary": {"enabled": False},
            "escalation": {"fallback_url": fallback_url},
            "judge": {"enabled": True, "sample_rate": 1.0, "model": "judge-model", **judge}}


@pytest.fixture(scope="module")
def router(worker, fallback):
    """The main router: every answered auto request judged, a generous cap, a 30 s judge timeout."""
    proc, url = start_service("tandem.services.router", _router_settings(
        worker, fallback[1], max_per_minute=100, max_per_day=None, timeout_s=30, max_concurrent=4))
    yield url
    stop_process(proc)


@pytest.fixture(scope="module")
def prometheus(router, tmp_path_factory):
    """A real Prometheus scraping the main router every second (Debian's `prometheus` package)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: apt-get install -y prometheus")
    root = tmp_path_factory.mktemp("prometheus")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "router", "static_configs": [{"targets": [router.removeprefix(
                  "http://")]}]}]}
    (root / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/-/ready", timeout=60, proc=proc)
        _until(lambda: _query(url, SKIPPED), 60, "Prometheus scraping the router's judge series")
        yield url
    finally:
        stop_process(proc)


def _query(prometheus: str, expr: str) -> list[float]:
    reply = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert reply["status"] == "success", (expr, reply)
    return [float(r["value"][1]) for r in reply["data"]["result"]]


def _until(predicate, timeout: float, what: str, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def _ask(router: str, text: str, messages: list[dict] | None = None, timeout: float = 120, **extra) -> httpx.Response:
    return httpx.post(f"{router}/v1/chat/completions", timeout=timeout, json={
        "model": "auto", "messages": messages or [{"role": "user", "content": text}], "max_tokens": 6,
        "temperature": 0, **extra})


def _count(router: str, name: str, **labels: str) -> float:
    return sample(router, name, **labels) or 0.0


def _judged(router: str) -> float:
    return _count(router, VERDICTS)


@pytest.mark.parametrize(("answer", "expected"), [
    ('{"domain": "code"}', "code"), ("automation", "automation"), (" Reasoning.\n", "reasoning"),
    ('"general"', "general"), ('```json\n{"domain": "code"}\n```', "code"),
    ("I think this is about code.", UNPARSED), ("code or reasoning", UNPARSED), ('{"domain": "math"}', UNPARSED),
    ('{"domain": "code", "why": "python"}', UNPARSED), ('{"domain": ', UNPARSED), ("", UNPARSED), (None, UNPARSED)])
def test_verdicts_are_parsed_strictly(answer, expected):
    assert parse_verdict(answer, DOMAINS) == expected


def test_answered_auto_request_is_judged_in_the_background(router, judge_upstream, prometheus):
    """Rate 1.0: the answer is the worker's, and the (routed, judged) pair is counted once the judgement
    finishes. The judge receives the fixed prompt and the last user message, nothing else of the request."""
    before = len(judge_upstream.payloads)
    judge_upstream.answer = '{"domain": "code"}'
    messages = [{"role": "system", "content": "SYSTEM-PROMPT-PRIVATE"},
                {"role": "user", "content": "EARLIER-TURN-PRIVATE"},
                {"role": "assistant", "content": "ASSISTANT-TURN-PRIVATE"},
                {"role": "user", "content": CODE_ASK}]
    response = _ask(router, "", messages=messages)
    assert response.status_code == 200
    assert response.headers["x-tandem-domain"] == "code" and response.headers["x-tandem-route"] == "tandem-base"
    assert response.headers["x-tandem-escalated"] == "false"
    assert response.json()["choices"][0]["message"]["content"]
    _until(lambda: _count(router, VERDICTS, routed="code", judged="code", agree="true") == 1, 60,
           "the (code, code) verdict")
    assert _judged(router) == 1 and _count(router, SKIPPED) == 0

    assert len(judge_upstream.payloads) == before + 1
    sent = judge_upstream.payloads[-1]
    assert sent["model"] == "scripted-judge"  # the fallback mapped the judge model name
    text = json.dumps(sent)
    assert CODE_ASK in text
    for private in ("SYSTEM-PROMPT-PRIVATE", "EARLIER-TURN-PRIVATE", "ASSISTANT-TURN-PRIVATE"):
        assert private not in text
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["domain"]["enum"] == DOMAINS
    assert sent["max_tokens"] == 16 and sent["temperature"] == 0

    # A streamed auto request is judged too, once its stream has ended.
    with httpx.stream("POST", f"{router}/v1/chat/completions", timeout=120, json={
            "model": "auto", "messages": [{"role": "user", "content": f"{CODE_ASK} In one line."}],
            "max_tokens": 6, "temperature": 0, "stream": True}) as streamed:
        assert streamed.status_code == 200
        events = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    _until(lambda: _count(router, VERDICTS, routed="code", judged="code") == 2, 60, "the streamed request's verdict")

    # So is a legacy text completion routed by `auto`.
    legacy = httpx.post(f"{router}/v1/completions", timeout=120, json={
        "model": "auto", "prompt": f"{CODE_ASK} As a lambda.", "max_tokens": 6, "temperature": 0})
    assert legacy.status_code == 200 and legacy.json()["choices"][0]["text"] is not None
    _until(lambda: _count(router, VERDICTS, routed="code", judged="code") == 3, 60, "the legacy request's verdict")

    # Explicit models are not sampled: the router did not route them.
    assert _ask(router, CODE_ASK, model="tandem-base").status_code == 200
    time.sleep(1.5)
    assert _judged(router) == 3 and len(judge_upstream.payloads) == before + 3


def test_disagreement_and_an_answer_naming_no_domain(router, judge_upstream):
    judge_upstream.answer = '{"domain": "reasoning"}'
    assert _ask(router, f"{CODE_ASK} Keep it short.").status_code == 200
    _until(lambda: _count(router, VERDICTS, routed="code", judged="reasoning", agree="false") == 1, 60,
           "the (code, reasoning) verdict")

    judge_upstream.answer = "Hmm, this looks like a programming question to me."
    before = _judged(router)
    response = _ask(router, f"{CODE_ASK} Use slicing.")
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    _until(lambda: _count(router, VERDICTS, routed="code", judged=UNPARSED) == 1, 60, "the unparsed verdict")
    assert _judged(router) == before + 1
    assert _count(router, VERDICTS, judged=UNPARSED, agree="true") == 0  # never counted as agreeing


def test_answer_does_not_wait_for_the_judgement(router, judge_upstream):
    """The judge holds its call until released (far past the client's timeout): the client still gets
    its answer, while the judgement is still running."""
    judge_upstream.answer = '{"domain": "code"}'
    judge_upstream.start_holding()
    before = _judged(router)
    try:
        started = time.monotonic()
        response = _ask(router, f"{CODE_ASK} Add a docstring.", timeout=25)
        assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
        _until(lambda: judge_upstream.holding == 1, 20, "the judgement reaching the held judge")
        assert _judged(router) == before  # no verdict yet: the client had its answer first
    finally:
        judge_upstream.release()
    _until(lambda: _judged(router) == before + 1, 30, "the verdict after the release")
    print(f"\nanswer in {time.monotonic() - started:.1f}s while the judge held its call")


def test_judge_panels_have_data_in_prometheus(router, prometheus):
    """Every judge panel of the routing dashboard is valid PromQL and returns data once judging is on."""
    panels = [p for p in json.loads(DASHBOARD.read_text())["panels"]
              if any("tandem_judge_" in t["expr"] for t in p["targets"])]
    assert len(panels) >= 4
    queries = {p["title"]: [t["expr"] for t in p["targets"] if "tandem_judge_" in t["expr"]] for p in panels}

    def with_data() -> list[str]:
        return [title for title, exprs in queries.items()
                if not any(math.isfinite(v) for e in exprs for v in _query(prometheus, e))]
    _until(lambda: not with_data(), 60, "every judge panel with data", every=1)
    # The panels read Prometheus's last scrape: wait until it holds every verdict the router has counted.
    _until(lambda: _query(prometheus, f"sum({VERDICTS})") == [_judged(router)], 60,
           "Prometheus scraping the router's current verdict counts", every=1)
    accuracy = _query(prometheus, next(e for e in queries["Routing accuracy over time by source"]))
    assert accuracy and 0 < accuracy[0] < 1  # agreeing / parsed verdicts: (code, code) x4, (code, reasoning) x1


@pytest.fixture(scope="module")
def capped_routers(worker, fallback, private_redis):
    """Two replicas sharing one judge cap of 2 per minute through Redis."""
    started = [start_service("tandem.services.router", _router_settings(
        worker, fallback[1], max_per_minute=2, max_per_day=None, timeout_s=30, redis_url=private_redis.url))
        for _ in range(2)]
    yield [url for _, url in started]
    for proc, _ in started:
        stop_process(proc)


def test_cap_per_minute_is_shared_by_replicas_and_counts_skips(capped_routers, judge_upstream):
    judge_upstream.answer = '{"domain": "code"}'
    seen = len(judge_upstream.payloads)
    for i in range(4):  # two requests to each replica; the cap of 2 is for both together
        response = _ask(capped_routers[i % 2], f"{CODE_ASK} Variant {i}.")
        assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]

    def settled() -> bool:
        return sum(_judged(url) + _count(url, SKIPPED) for url in capped_routers) == 4
    _until(settled, 60, "four sampled requests judged or skipped")
    assert sum(_judged(url) for url in capped_routers) == 2
    assert sum(_count(url, SKIPPED, reason="rate_cap") for url in capped_routers) == 2
    assert len(judge_upstream.payloads) == seen + 2  # skipped judgements cost the fallback nothing


@pytest.fixture(scope="module")
def quick_router(worker, fallback):
    proc, url = start_service("tandem.services.router", _router_settings(
        worker, fallback[1], max_per_minute=100, timeout_s=1.5))
    yield url
    stop_process(proc)


def _answer_facts(response: httpx.Response) -> tuple:
    body = response.json()
    return (response.status_code, body["choices"], body["model"], body["usage"],
            {k: response.headers[k] for k in ("x-tandem-route", "x-tandem-domain", "x-tandem-escalated")},
            "x-tandem-escalation-refused" in response.headers)


def test_slow_judge_times_out_and_is_skipped(quick_router, judge_upstream):
    judge_upstream.start_holding()
    try:
        response = _ask(quick_router, f"{CODE_ASK} Slowly.")
        assert response.status_code == 200
        _until(lambda: _count(quick_router, SKIPPED, reason="timeout") == 1, 30, "the timeout skip")
        assert _judged(quick_router) == 0
    finally:
        judge_upstream.release()


def test_budget_refusal_or_fallback_down_never_changes_the_answer(router, fallback, judge_upstream, private_redis):
    """The same request answered with the judge working, with the fallback's budget spent, and with the
    fallback down: the same status, answer and route facts each time; the skips are counted by reason."""
    judge_upstream.answer = '{"domain": "code"}'
    ask = f"{CODE_ASK} Name it rev."
    before = _judged(router)
    normal = _ask(router, ask)
    _until(lambda: _judged(router) == before + 1, 60, "the normal verdict")

    store = redis.Redis.from_url(private_redis.url)
    store.set(KEY_PREFIX + today(), 1000.0)
    seen = len(judge_upstream.payloads)
    try:
        spent = _ask(router, ask)
        _until(lambda: _count(router, SKIPPED, reason="budget") == 1, 60, "the budget skip")
    finally:
        store.delete(KEY_PREFIX + today())
    assert len(judge_upstream.payloads) == seen  # the fallback refused before calling its upstream

    stop_process(fallback[0])  # last test of the module: the fallback stays down
    down = _ask(router, ask)
    _until(lambda: _count(router, SKIPPED, reason="error") == 1, 60, "the error skip (fallback down)")

    assert _answer_facts(spent) == _answer_facts(normal) == _answer_facts(down)
    assert _answer_facts(normal)[0] == 200 and _answer_facts(normal)[-1] is False
    assert _judged(router) == before + 1
