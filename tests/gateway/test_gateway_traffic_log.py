"""Traffic sampling for the learning loop (services/router/traffic_log.py): real router processes over
HTTP in front of the real embedded worker. A sampled request reaches the JSONL log redacted; a client
that opts out (header or `store: false`) is never logged; rate 0 logs nothing; a stream is logged with
its whole answer; rotation keeps the folder bounded; `tandem traffic export` writes rows the failure
analysis loads."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tandem.cli import main as tandem_main
from tandem.services.router.settings import RouterSettings
from tandem.services.router.traffic_log import Pending, TrafficLog, TrafficLogSettings, TrafficMetrics
from tandem.services.up import UpConfig, plan_services
from tandem.training.failures.rows import load_failures
from tests.fallback.servers import start_service, stop_process

EMAIL, PHONE, CARD, KEY = "jane.roe@example.org", "+1 (415) 555-0132", "4111 1111 1111 1111", "sk-proj-Zx9Q8w7E6r5T4y3U2i1O"
PII_TEXT = f"My mail is {EMAIL}, phone {PHONE}, card {CARD}, key {KEY}. Say hi."
SECRET_HEADER = "Bearer sk-header-Secret0123456789abcdef"


def _router(tandem_up, log_dir: Path, **traffic):
    return start_service("tandem.services.router", {
        "workers": [{"name": "base_model", "url": tandem_up.worker_url}],
        "traffic_log": {"enabled": True, "dir": str(log_dir), **traffic}}, env=tandem_up.internal_env)


def _chat(url: str, content: str, headers: dict | None = None, **extra) -> httpx.Response:
    body = {"model": "tandem-base", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}], **extra}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers or {}, timeout=120)
    assert response.status_code == 200, response.text
    return response


def _records(log_dir: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(log_dir.glob("traffic-*.jsonl")) for line in f.read_text().splitlines()
            if line.strip()]


def _requests(log_dir: Path) -> list[dict]:
    return [r for r in _records(log_dir) if r["kind"] == "request"]


def _metric(url: str, event: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(rf'^tandem_traffic_log_total\{{event="{event}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else -1.0


def _wait_written(url: str, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _metric(url, "written") < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(url, "written") >= n


@pytest.fixture(scope="module")
def sampled(tandem_up, tmp_path_factory):
    """Rate 1.0: every answered request is a candidate; the opted-out ones must still be absent."""
    log_dir = tmp_path_factory.mktemp("traffic")
    proc, url = _router(tandem_up, log_dir, sample_rate=1.0)
    answers = {
        "pii": _chat(url, PII_TEXT, headers={"authorization": SECRET_HEADER}),
        "header_opt_out": _chat(url, "OPTOUT-HEADER-MARKER hello", headers={"X-Tandem-No-Log": "1"}),
        "store_false": _chat(url, "OPTOUT-STORE-MARKER hello", store=False),
    }
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=120, json={
            "model": "tandem-base", "max_tokens": 12, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "STREAM-MARKER count to five"}]}) as stream:
        assert stream.status_code == 200
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: {")]
    answers["stream_text"] = "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e["choices"])
    for response, feedback in ((answers["pii"], {"rating": -1, "correct_domain": "code"}),
                               (answers["header_opt_out"], {"rating": 1})):  # counted, never logged
        sent = httpx.post(f"{url}/v1/feedback", timeout=10,
                          json={"request_id": response.headers["x-tandem-request-id"], **feedback})
        assert sent.status_code == 200, sent.text
    _wait_written(url, 3)
    yield url, log_dir, answers
    stop_process(proc)


def test_a_sampled_request_is_logged_redacted(sampled):
    _, log_dir, answers = sampled
    raw = "".join(f.read_text() for f in log_dir.glob("traffic-*.jsonl"))
    for secret in (EMAIL, PHONE, CARD, KEY, "Zx9Q8w7E6r5T4y3U2i1O", "sk-header", "authorization", "127.0.0.1"):
        assert secret not in raw, secret
    # Digit fragments are looked for outside the random hex ids, which may contain them by chance.
    logged_text = json.dumps([{k: v for k, v in r.items() if k not in ("request_id", "time")}
                              for r in _records(log_dir)])
    for fragment in ("4111", "415", "0132"):
        assert fragment not in logged_text, fragment
    [record] = [r for r in _requests(log_dir) if "Say hi" in r["messages"][-1]["content"]]
    assert record["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My mail is [EMAIL], phone [PHONE], card [CARD], key [SECRET]. Say hi."}]
    pii = answers["pii"].json()
    assert record["request_id"] == answers["pii"].headers["x-tandem-request-id"]
    assert record["model"] == "tandem-base" and record["route"] == "tandem-base" and record["domain"] == "general"
    assert record["escalated"] is False and record["cache"] in ("miss", "bypass") and record["status"] == 200
    assert record["answer"] == pii["choices"][0]["message"]["content"]  # a short greeting: nothing to redact
    assert record["usage"] == pii["usage"] and record["latency_s"] > 0 and record["stream"] is False
    assert record["v"] == 1 and record["time"].endswith("+00:00")


def test_opted_out_requests_are_never_logged_but_counted(sampled):
    url, log_dir, _ = sampled
    raw = "".join(f.read_text() for f in log_dir.glob("traffic-*.jsonl"))
    assert "OPTOUT-HEADER-MARKER" not in raw and "OPTOUT-STORE-MARKER" not in raw
    assert _metric(url, "opted_out") == 2
    assert _metric(url, "sampled") == 2 and _metric(url, "dropped") == 0 and _metric(url, "error") == 0
    feedback = [r for r in _records(log_dir) if r["kind"] == "feedback"]
    assert [(r["rating"], r["correct_domain"]) for r in feedback] == [(-1, "code")]  # the opted-out one's: not


def test_a_stream_is_logged_with_its_whole_answer(sampled):
    _, log_dir, answers = sampled
    [record] = [r for r in _requests(log_dir) if "STREAM-MARKER" in r["messages"][-1]["content"]]
    assert record["stream"] is True and record["status"] == 200
    assert record["answer"] == answers["stream_text"] and record["answer"]
    assert record["usage"]["completion_tokens"] >= 1 and record["finish_reason"] in ("stop", "length")


def test_export_writes_rows_the_failure_analysis_loads(sampled, tmp_path):
    _, log_dir, _ = sampled
    out = tmp_path / "rows.jsonl"
    assert tandem_main(["traffic", "export", str(log_dir), "--out", str(out), "--label", "all"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and {r["suite"] for r in rows} == {"traffic/general"}
    failures = load_failures([out], pass_score=1.0)
    assert len(failures.rows) == 2 and not failures.skipped
    assert failures.rows[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    # the default label: the client's thumbs-down fails the first; the local answer served passes
    assert tandem_main(["traffic", "export", str(log_dir), "--out", str(out)]) == 0
    failures = load_failures([out], pass_score=1.0)
    assert failures.total_by_suite["traffic/general"] == 2
    [failed] = failures.rows
    assert "[EMAIL]" in failed["prompt"][-1]["content"] and failed["rating"] == -1
    assert failed["correct_domain"] == "code"
    assert tandem_main(["traffic", "export", str(log_dir), "--out", str(out), "--label", "escalation"]) == 0
    assert not load_failures([out], pass_score=1.0).rows


def test_rate_zero_logs_nothing(tandem_up, tmp_path):
    proc, url = _router(tandem_up, tmp_path, sample_rate=0.0)
    try:
        _chat(url, "hello there")
        assert _metric(url, "sampled") == 0 and _metric(url, "written") == 0
        assert not list(tmp_path.glob("traffic-*.jsonl"))
    finally:
        stop_process(proc)


def test_rotation_keeps_the_folder_bounded(tandem_up, tmp_path):
    proc, url = _router(tandem_up, tmp_path, sample_rate=1.0, max_file_bytes=4096, max_files=2)
    try:
        for i in range(7):
            _chat(url, f"request {i}: " + "lorem ipsum dolor sit amet " * 60, max_tokens=1)
        _wait_written(url, 7)
        files = list(tmp_path.glob("traffic-*.jsonl"))
        assert len(files) <= 2 and all(f.stat().st_size <= 4096 for f in files)
        assert 1 <= len(_records(tmp_path)) < 7  # the oldest files went
    finally:
        stop_process(proc)


def test_tool_definitions_are_logged_by_name_and_arguments_redacted(tmp_path):
    log = TrafficLog(TrafficLogSettings(enabled=True, dir=tmp_path), TrafficMetrics(__import__(
        "prometheus_client").CollectorRegistry()))
    try:
        from tandem.common.wire import ChatCompletionRequest
        body = ChatCompletionRequest.model_validate({"model": "auto", "tools": [
            {"type": "function", "function": {"name": "send_mail", "description": "secret schema",
                                              "parameters": {"type": "object"}}}],
            "messages": [{"role": "user", "content": "mail bob@x.io"},
                         {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {
                             "name": "send_mail", "arguments": "{\"to\": \"bob@x.io\"}"}}]},
                         {"role": "tool", "tool_call_id": "1", "content": "sent to bob@x.io"}]})
        answer = {"choices": [{"message": {"role": "assistant", "content": "Done, bob@x.io has it."},
                               "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                  "tandem": {"route": "tandem-automation", "domain": "automation", "confidence": 0.9,
                             "escalated": False, "cache": "miss"}}
        record = log.record(Pending(body, {"x-tandem-request-id": "r1"}, 200, 0.5, time.time(),
                                    raw=json.dumps(answer).encode()))
        text = json.dumps(record)
        assert "bob@x.io" not in text and "secret schema" not in text
        assert record["tools"] == ["send_mail"] and record["domain"] == "automation"
        assert record["messages"][1]["tool_calls"] == [{"name": "send_mail", "arguments": "{\"to\": \"[EMAIL]\"}"}]
        assert record["answer"] == "Done, [EMAIL] has it."
    finally:
        log.close()


def test_settings_are_validated_and_wired_through_tandem_up(tmp_path):
    with pytest.raises(ValueError, match="traffic_log.enabled needs traffic_log.dir"):
        RouterSettings(traffic_log={"enabled": True})
    with pytest.raises(ValueError, match="extra"):
        RouterSettings(traffic_log={"enabled": False, "rate": 0.5})
    with pytest.raises(ValueError):
        RouterSettings(traffic_log={"enabled": True, "dir": str(tmp_path), "sample_rate": 1.5})
    assert RouterSettings().traffic_log.enabled is False  # opt-in
    config = UpConfig.model_validate({"artifacts_dir": str(tmp_path / "none"), "default_bundle": False, "router": {
        "traffic_log": {"enabled": True, "dir": str(tmp_path / "log"), "sample_rate": 0.25, "redact": ["email"]}}})
    [router] = [s for s in plan_services(config, "t" * 32) if s.name == "router"]
    settings = RouterSettings.model_validate(json.loads(router.settings_json))
    assert settings.traffic_log.enabled and settings.traffic_log.sample_rate == 0.25
    assert settings.traffic_log.redact == ["email"] and settings.traffic_log.dir == tmp_path / "log"


def _log(tmp_path, **settings) -> TrafficLog:
    from prometheus_client import CollectorRegistry
    return TrafficLog(TrafficLogSettings(enabled=True, dir=tmp_path, sample_rate=1.0, **settings),
                      TrafficMetrics(CollectorRegistry()))


def _count(log: TrafficLog, event: str) -> float:
    return log.metrics.events.labels(event)._value.get()


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path):
    import threading

    from fastapi.responses import JSONResponse

    from tandem.common.wire import ChatCompletionRequest
    log = _log(tmp_path, queue_size=1)
    release = threading.Event()
    write = log._write
    log._write = lambda line: (release.wait(10), write(line))  # a disk that hangs
    body = ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    try:
        started = time.perf_counter()
        for _ in range(5):
            log.observe(JSONResponse({"choices": []}), body, {}, time.perf_counter())
        assert time.perf_counter() - started < 0.5  # never waited for the writer
        assert _count(log, "sampled") == 5
        assert _count(log, "dropped") >= 3  # one in the writer's hands, one queued, the rest dropped
    finally:
        release.set()
        log.close()
    assert _count(log, "written") == 5 - _count(log, "dropped")


def test_the_day_change_rotates(tmp_path):
    log = _log(tmp_path)
    try:
        log._write(b"{}\n")
        first = log._path
        log._day = "19700101"  # as if the process had started yesterday
        log._write(b"{}\n")
        assert log._path != first and len(list(tmp_path.glob("traffic-*.jsonl"))) == 2
    finally:
        log.close()
