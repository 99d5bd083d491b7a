"""The whole loop against real processes: `tandem up` (router, base worker, modifier worker, real
Redis) logs production traffic and its thumbs-down feedback; `tandem loop` (a real CLI process)
clusters the failures, buys new rows from a teacher that is a real OpenAI-compatible HTTP server
(tests/loop/acme_teacher.py, the only stand-in: for the paid frontier API), retrains the modifier
on the served base, gates it against the version being served, promotes it by hot reload, and
rolls it back when its live check fails; meanwhile a client keeps sending requests to the very
model being replaced, and none of them may fail.

ACME's users want answers that start with "ACME Support:"; the served `tandem-support` modifier (a
weak one, trained for one step on unrelated rows) never writes that, so they rate its answers down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tandem.common.manifest import Manifest, sha256_file
from tandem.common.model_files import resolve_model_path
from tests.conftest import free_port, start_tandem_up, stop_tandem_up
from tests.fallback.servers import RedisServer
from tests.loop.acme_teacher import PREFIX, AcmeTeacher

ROOT = Path(__file__).resolve().parents[2]
# ~25 min on a shared 2-core machine (36 min measured with a 12-min detour): nightly, not per change
pytestmark = [pytest.mark.nightly, pytest.mark.timeout(3600)]
TRAFFIC = ["How do I reset my ACME kettle (model K210)?", "My ACME router R552 keeps dropping. How do I update it?",
           "How can I clean the ACME blender B310?", "What are the steps to pair my ACME speaker S118?",
           "How do I register my new ACME vacuum V402?", "How do I descale the ACME kettle K877?",
           "Can you tell me how to unlock my ACME scooter Z930?", "How do I calibrate an ACME thermostat T212?",
           "How do I mount the ACME camera C640 on a wall?", "How do I return an ACME toaster X115?",
           "My ACME printer P733 needs an update. What do I do?", "How do I reset the ACME doorbell D321?"]
PRAISED = ["What is the capital of Italy?", "Say hello in French."]


def weak_incumbent(tmp: Path) -> Path:
    """A real adapter for the embedded base that knows nothing of ACME (one tiny step on unrelated rows)."""
    from tandem.training.lora_export import export_lora_gguf
    from tandem.training.sft import run_sft
    from tandem.training.sft_config import SFTConfig

    rows = [{"id": f"w{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, a) in enumerate([("What is 2 + 2?", "4."), ("Name a colour.", "Blue.")])]
    config = SFTConfig(base_model="embedded", output_dir=tmp / "weak-sft", max_steps=1, learning_rate=1e-5,
                       batch_size=2, max_seq_len=64, logging_steps=1, eval_steps=1)
    result = run_sft(config, rows, [])
    return export_lora_gguf(result.adapter_dir, result.base_hf_dir, tmp / "support-weak.gguf")


class Client(threading.Thread):
    """Keeps asking `tandem-support` (streams and plain requests, uncached, unlogged) until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.calls = url, threading.Event(), []

    def run(self) -> None:
        headers = {"cache-control": "no-store", "x-tandem-no-log": "1"}
        body = {"model": "tandem-support", "temperature": 0, "max_tokens": 24,
                "messages": [{"role": "user", "content": "How do I clean my ACME lamp L404?"}]}
        with httpx.Client(timeout=300) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                started, ok, detail = time.time(), False, ""
                try:
                    if n % 2:
                        with client.stream("POST", f"{self.url}/v1/chat/completions", headers=headers,
                                           json={**body, "stream": True}) as response:
                            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
                            ok = response.status_code == 200 and lines[-1] == "data: [DONE]" and \
                                not any('"error"' in line for line in lines)
                            detail = f"{response.status_code} {lines[-2:]}"
                    else:
                        response = client.post(f"{self.url}/v1/chat/completions", headers=headers, json=body)
                        ok = response.status_code == 200 and bool(response.json()["choices"][0]["message"]["content"])
                        detail = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    detail = repr(exc)
                self.calls.append({"started": started, "ended": time.time(), "ok": ok, "detail": detail})


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop")
    artifacts, traffic = tmp / "artifacts", tmp / "traffic"
    (artifacts / "modifiers").mkdir(parents=True)
    weak = weak_incumbent(tmp)
    target = artifacts / "modifiers" / "support.gguf"
    target.write_bytes(weak.read_bytes())
    Manifest(artifacts).record("support", "modifier", [target], base_sha256=sha256_file(resolve_model_path(None)),
                               extra={"trained_on": {}, "servable": True, "reason": "the weak incumbent of the test"})
    redis = RedisServer().start()
    stack = None
    try:
        with AcmeTeacher(free_port()) as teacher:
            stack = start_tandem_up(artifacts, f"redis_url={redis.url}", "router.traffic_log.enabled=true",
                                    f"router.traffic_log.dir={traffic}", "router.traffic_log.sample_rate=1.0")
            yield tmp, artifacts, traffic, teacher, stack
    finally:
        if stack is not None:
            stop_tandem_up(stack)
        redis.stop()


def _loop(tmp: Path, artifacts: Path, traffic: Path, teacher: AcmeTeacher, stack, *extra: str) -> tuple[int, dict]:
    # The shipped config, without its `gate.elsewhere` benchmark slices (MBPP 50 + BFCL 20 per version: an
    # hour on a shared 2-core machine); a `key={}` override merges into a mapping, so the file is rewritten.
    config = yaml.safe_load((ROOT / "configs/loop/default.yaml").read_text())
    config["gate"]["elsewhere"] = {}
    (tmp / "loop.yaml").write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "tandem.cli", "loop", "--config", str(tmp / "loop.yaml"),
            "name=acme", "domain=support", f"artifacts_dir={artifacts}", f"work_dir={tmp / 'work'}",
            f"traffic.logs=[{traffic}]", "traffic.domains=[support]",
            f"distill.teacher.base_url={teacher.url}", "distill.teacher.model=acme-teacher",
            "distill.budget.price.input_per_mtok=1", "distill.budget.price.output_per_mtok=2",
            "distill.budget.max_usd=1", "distill.tasks_per_category=16", "distill.tasks_per_request=8",
            "failures.k_max=3", "replay_sources=[]", "sft.max_steps=12", "sft.learning_rate=3e-3",
            "sft.batch_size=2", "sft.grad_accum=1", "sft.max_seq_len=128", "sft.eval_steps=100",
            "gate.max_tokens=24", f"promote.router_url={stack.url}", *extra]
    # one torch thread: on a shared 2-core machine, two threads that wait on each other at every op are slower
    env = {**os.environ, "TANDEM_INTERNAL_TOKEN": stack.internal_token, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, check=False, cwd=ROOT, env=env, timeout=2400)
    return proc.returncode, json.loads((tmp / "work" / "report.json").read_text())


def _ask(url: str, content: str) -> str:
    response = httpx.post(f"{url}/v1/chat/completions", timeout=300, headers={"cache-control": "no-store"}, json={
        "model": "tandem-support", "temperature": 0, "max_tokens": 24, "messages": [{"role": "user", "content": content}]})
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_one_loop_turn_rolls_back_a_failed_check_then_promotes_a_better_adapter_without_a_failed_request(acme):
    tmp, artifacts, traffic, teacher, stack = acme
    weak_sha = Manifest(artifacts).entry("support").files[0].sha256

    # Production traffic, logged by the router, and what the users thought of it.
    assert not _ask(stack.url, TRAFFIC[0]).startswith(PREFIX)
    for content, rating in [(c, -1) for c in TRAFFIC] + [(c, 1) for c in PRAISED]:
        response = httpx.post(f"{stack.url}/v1/chat/completions", timeout=300, json={
            "model": "tandem-support", "temperature": 0, "max_tokens": 16,
            "messages": [{"role": "user", "content": content}]})
        assert response.status_code == 200, response.text
        sent = httpx.post(f"{stack.url}/v1/feedback", timeout=10,
                          json={"request_id": response.headers["x-tandem-request-id"], "rating": rating})
        assert sent.status_code == 200 and sent.json()["counted"], sent.text
    deadline = time.monotonic() + 30
    while sum(1 for f in traffic.glob("traffic-*.jsonl") for line in f.read_text().splitlines()
              if '"kind": "feedback"' in line or '"kind":"feedback"' in line) < len(TRAFFIC) + len(PRAISED):
        assert time.monotonic() < deadline, "the traffic log did not record the feedback"
        time.sleep(0.2)

    client = Client(stack.url)
    client.start()
    try:
        # 1. The candidate passes the gate and is promoted, but its live check is set to fail: rolled back.
        code, first = _loop(tmp, artifacts, traffic, teacher, stack, "promote.min_live_score=1.01")
        assert code == 3, first
        assert first["status"] == "rolled_back" and first["gate"]["servable"], first["gate"]["reason"]
        assert first["failures"]["failures"] == len(TRAFFIC)  # the praised requests are not failures
        assert first["promotion"]["restored"] and "live score" in first["promotion"]["why"]
        assert first["promotion"]["versions_after_rollback"]["tandem-support"].endswith(weak_sha[:16])
        assert Manifest(artifacts).entry("support").files[0].sha256 == weak_sha
        assert not _ask(stack.url, TRAFFIC[1]).startswith(PREFIX)  # the weak version answers again
        paid = teacher.state.count("tasks") + teacher.state.count("answer")
        assert paid > 0 and first["distill"]["spent_usd_total"] > 0

        # 2. The same turn again (resumed: the teacher's rows are not bought twice), with the default check.
        code, second = _loop(tmp, artifacts, traffic, teacher, stack)
        assert code == 0, second
        assert teacher.state.count("tasks") + teacher.state.count("answer") == paid
        assert second["distill"]["requests_sent"] == 0
        assert second["distill"]["spent_usd_total"] >= first["distill"]["spent_usd_total"]
        assert second["status"] == "promoted" and second["promotion"]["live"]["passed"]
    finally:
        client.stop.set()
        client.join(timeout=300)

    # The gate: better than the version served, on held-out rows the candidate never saw.
    gate = second["gate"]
    assert gate["reference"] == "served adapter"
    assert gate["heldout"]["modifier"]["loss"] < gate["heldout"]["base"]["loss"]
    assert gate["task"]["modifier"]["score"] > gate["task"]["base"]["score"]
    assert gate["task"]["difference"]["p_gain"] < 0.05
    assert second["check"]["eval_items_checked"] > 10_000  # every eval split's prompts were checked

    # Served now, without a restart: the new version answers in ACME's format.
    entry = Manifest(artifacts).entry("support")
    assert entry.files[0].sha256 == second["promotion"]["sha256"] != weak_sha
    assert entry.extra["replaces"] == weak_sha
    assert _ask(stack.url, "How do I update my ACME drone D555?").startswith(PREFIX)
    worker = httpx.get(f"{stack.modifier_url}/ready", timeout=10).json()
    assert worker["reloads"] == 3 and worker["adapters_freed"] >= 1 and stack.proc.poll() is None

    # No request failed, and requests were in flight while the stack reloaded.
    failed = [c for c in client.calls if not c["ok"]]
    assert not failed, failed[:3]
    assert len(client.calls) >= 4
    spans = [(c["started"], c["ended"]) for c in client.calls]
    reloads = [(r["promotion"]["reload_started"], r["promotion"]["reload_finished"]) for r in (first, second)]
    assert any(s < started and e > finished for s, e in spans for started, finished in reloads), \
        "no request was in flight during a reload"
