"""The loop retrains the domain router from production feedback, against real processes.

`tandem up` serves a real ONNX router (the shipped recipe on a small slice of its data, trained here)
with its traffic log on. ACME's users ask about "Quillmate", their in-house job runner; the router has
never seen the word and sends most of those requests to `general`, and the users say, through
`POST /v1/feedback`, that they meant `automation`. `tandem loop` (a real CLI process, `retrain:
[router]`) turns that feedback into router rows, refits the heads on the served encoder, gates the
candidate, writes it into the artifacts folder and hot-reloads it into the running router. A client
keeps asking the router (`/v1/route` and `auto` chat completions) throughout; none of its requests
may fail.

Turn 1: the live check is set to fail (an unreachable floor): promoted, checked, rolled back.
Turn 2: promoted; /v1/route now sends the held-out Quillmate prompts (never trained on) to automation.
Beside it, in process: a candidate that falls on the real dev set is refused and not promoted, and
the rows are checked against the router's real test and dev prompts.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tandem.common.manifest import Manifest
from tests.conftest import start_tandem_up, stop_tandem_up
from tests.loop.router_feedback_prompts import LABEL, QUILLMATE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served_router(tmp_path_factory) -> Path:
    """An artifacts folder whose manifest lists a real router: the shipped recipe, 30 items per source."""
    sys.path.insert(0, str(ROOT / "tests" / "routing"))
    from routing_helpers import small_config

    from tandem.training.routing.train import run

    artifacts = tmp_path_factory.mktemp("router-loop") / "artifacts"
    run(small_config(artifacts), measure_latency=False)
    return artifacts


def _copy(artifacts: Path, to: Path) -> Path:
    shutil.copytree(artifacts, to)
    return to


def bundle_router(to: Path) -> Path:
    """An artifacts folder holding the bundled default router (fine-tuned encoder LoRA + heads), nothing else."""
    from tandem.common.served_artifacts import BUNDLED_ARTIFACTS

    shutil.copytree(BUNDLED_ARTIFACTS / "router", to / "router")
    Manifest(to).put("router", Manifest(BUNDLED_ARTIFACTS).entry("router"))
    return to


class Client(threading.Thread):
    """Keeps asking the router (/v1/route and `auto` chat completions, uncached, unlogged) until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.calls = url, threading.Event(), []

    def run(self) -> None:
        headers = {"cache-control": "no-store", "x-tandem-no-log": "1"}
        messages = [{"role": "user", "content": "Ask Quillmate to rebuild the docs site every evening."}]
        with httpx.Client(timeout=120, headers=headers) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                started, ok, detail = time.time(), False, ""
                try:
                    if n % 4:
                        response = client.post(f"{self.url}/v1/route", json={"model": "auto", "messages": messages})
                        ok = response.status_code == 200 and response.json()["domain"] in ("automation", "general",
                                                                                           "code", "reasoning")
                    else:
                        response = client.post(f"{self.url}/v1/chat/completions", json={
                            "model": "auto", "messages": messages, "max_tokens": 2, "temperature": 0})
                        ok = response.status_code == 200
                    detail = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    detail = repr(exc)
                self.calls.append({"started": started, "ended": time.time(), "ok": ok, "detail": detail})
                time.sleep(0.05)


def _route(url: str, text: str) -> str:
    response = httpx.post(f"{url}/v1/route", timeout=30, json={"model": "auto",
                                                                "messages": [{"role": "user", "content": text}]})
    assert response.status_code == 200, response.text
    return response.json()["domain"]


def _loop(tmp: Path, artifacts: Path, traffic: Path, stack, *extra: str) -> tuple[int, dict]:
    argv = [sys.executable, "-m", "tandem.cli", "loop", "--config", str(ROOT / "configs/loop/router.yaml"),
            "name=quillmate", f"artifacts_dir={artifacts}", f"work_dir={tmp / 'work'}", f"traffic.logs=[{traffic}]",
            f"promote.router_url={stack.url}", *extra]
    env = {**os.environ, "TANDEM_INTERNAL_TOKEN": stack.internal_token, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, check=False, cwd=ROOT, env=env, timeout=900, capture_output=True, text=True)
    assert (tmp / "work" / "report.json").is_file(), proc.stderr[-3000:]
    return proc.returncode, json.loads((tmp / "work" / "report.json").read_text())


@pytest.mark.nightly  # ~6 min on the shared 2-core machine (router training, tandem up, two loop turns)
@pytest.mark.timeout(1800)
def test_feedback_naming_the_domain_retrains_the_router_promoted_by_hot_reload_without_a_failed_request(
        served_router, tmp_path):
    artifacts, traffic = _copy(served_router, tmp_path / "artifacts"), tmp_path / "traffic"
    first_version = Manifest(artifacts).entry("router")
    marks = {"start": time.monotonic()}
    stack = start_tandem_up(artifacts, "router.traffic_log.enabled=true", f"router.traffic_log.dir={traffic}",
                            "router.traffic_log.sample_rate=1.0")
    marks["up"] = time.monotonic()
    client = Client(stack.url)
    try:
        before = {q: _route(stack.url, q) for q in QUILLMATE}
        assert sum(d != LABEL for d in before.values()) >= len(QUILLMATE) // 3, before  # the router gets many wrong

        # Production traffic, logged by the router, and the users' corrections (4 at a time: the worker batches).
        def ask_and_correct(content: str) -> None:
            response = httpx.post(f"{stack.url}/v1/chat/completions", timeout=120, json={
                "model": "auto", "max_tokens": 2, "temperature": 0, "messages": [{"role": "user", "content": content}]})
            assert response.status_code == 200, response.text
            sent = httpx.post(f"{stack.url}/v1/feedback", timeout=10, json={
                "request_id": response.headers["x-tandem-request-id"], "correct_domain": LABEL})
            assert sent.status_code == 200 and sent.json()["counted"] == ["domain"], sent.text

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(ask_and_correct, QUILLMATE))
        deadline = time.monotonic() + 30
        while sum(line.count('"kind": "feedback"') + line.count('"kind":"feedback"')
                  for f in traffic.glob("traffic-*.jsonl") for line in f.read_text().splitlines()) < len(QUILLMATE):
            assert time.monotonic() < deadline, "the traffic log did not record the feedback"
            time.sleep(0.2)

        marks["traffic"] = time.monotonic()
        client.start()
        # 1. Passes the gate, promoted, but its live check is set to fail: rolled back to the served router.
        code, first = _loop(tmp_path, artifacts, traffic, stack, "router.min_live_accuracy=1.01")
        router = first["router"]
        assert code == 3 and first["status"] == "rolled_back", json.dumps(router, default=str)[:3000]
        assert router["gate"]["servable"] and router["promotion"]["rolled_back"]
        assert router["promotion"]["restored"] and "live held-out accuracy" in router["promotion"]["why"]
        assert Manifest(artifacts).entry("router").files == first_version.files
        assert {q: _route(stack.url, q) for q in QUILLMATE} == before  # the old router routes again

        # 2. The same turn with the default check: promoted.
        marks["turn1"] = time.monotonic()
        code, second = _loop(tmp_path, artifacts, traffic, stack)
        marks["turn2"] = time.monotonic()
        router = second["router"]
        assert code == 0 and second["status"] == "promoted", json.dumps(router, default=str)[:3000]
        live = router["promotion"]["live"]
        assert live["passed"] and live["accuracy"] == live["gate_accuracy"] == router["gate"]["heldout"]["candidate_accuracy"]

        # 3. A manifest entry the router cannot load (a file that does not match its sha256): the reload answers
        # 502 with the error and the promoted router keeps serving; restored, a reload finds nothing to do.
        promoted = Manifest(artifacts).entry("router")
        damaged = promoted.model_copy(deep=True)
        damaged.files[0].sha256 = "0" * 64
        Manifest(artifacts).put("router", damaged)
        headers = {"authorization": f"Bearer {stack.internal_token}"}
        refused = httpx.post(f"{stack.url}/admin/reload", headers=headers, timeout=120)
        assert refused.status_code == 502 and not refused.json()["router"]["ok"], refused.text
        assert refused.json()["router"]["version"] == router["promotion"]["version"]
        assert "sha256" in refused.json()["router"]["error"]
        Manifest(artifacts).put("router", promoted)
        again = httpx.post(f"{stack.url}/admin/reload", headers=headers, timeout=120)
        assert again.status_code == 200 and again.json()["router"] == {
            "ok": True, "reloaded": False, "version": router["promotion"]["version"]}, again.text
    finally:
        client.stop.set()
        if client.is_alive():
            client.join(timeout=120)
        after = {q: _route(stack.url, q) for q in QUILLMATE} if stack.proc.poll() is None else {}
        stop_tandem_up(stack)

    # The gate, fixed before the run: no fall on the real dev set, a gain on held-out feedback.
    gate = router["gate"]
    assert gate["dev"]["n"] >= 150 and gate["dev"]["p_fall"] >= 0.05
    assert gate["heldout"]["candidate_accuracy"] > gate["heldout"]["served_accuracy"]
    assert gate["heldout"]["p_gain"] < 0.05
    heldout = json.loads((tmp_path / "work" / "router" / "rows.json").read_text())["heldout"]
    assert len(heldout) == gate["heldout"]["n"] >= 5
    # Served now without a restart: the held-out prompts (never trained on) go where the gate saw the candidate
    # send them, nearly all to the corrected domain.
    by_id = {item["id"]: item["candidate"] for item in gate["heldout"]["items"]}
    assert all(after[row["text"]] == by_id[row["id"]] for row in heldout), after
    assert sum(after[row["text"]] == LABEL for row in heldout) >= 0.9 * len(heldout)
    assert sum(after[row["text"]] == LABEL for row in heldout) > sum(before[row["text"]] == LABEL for row in heldout)
    entry = Manifest(artifacts).entry("router")
    assert entry.extra["replaces"] == router["promotion"]["previous_version"] != router["promotion"]["version"]
    assert "traffic_feedback" in entry.extra["trained_on"]
    assert entry.files[0].path.startswith(f"router-loop/{router['promotion']['version']}/")
    # No request of the client failed, and some ran across each reload.
    assert client.calls and all(c["ok"] for c in client.calls), [c for c in client.calls if not c["ok"]][:5]
    for turn in (first, second):
        start, end = turn["router"]["promotion"]["reload_started"], turn["router"]["promotion"]["reload_finished"]
        assert any(c["started"] <= end and c["ended"] >= start for c in client.calls), (start, end)
    steps = list(marks)
    print(json.dumps({"seconds": {b: round(marks[b] - marks[a], 1) for a, b in itertools.pairwise(steps)},
                      "in_flight_across_reloads": [sum(c["started"] <= t["router"]["promotion"]["reload_finished"]
                                                       and c["ended"] >= t["router"]["promotion"]["reload_started"]
                                                       for c in client.calls) for t in (first, second)],
                      "reload_s": [round(t["router"]["promotion"]["reload_finished"]
                                         - t["router"]["promotion"]["reload_started"], 2) for t in (first, second)],
                      "calls": len(client.calls), "gate": {k: gate[k] for k in ("dev", "reason")},
                      "heldout": {k: v for k, v in gate["heldout"].items() if k != "items"},
                      "refit": router["refit"], "timings": router["timings_s"]}, default=str))


def test_a_candidate_that_falls_on_the_real_dev_set_is_refused_and_not_promoted(tmp_path, monkeypatch):
    """The gate on real routers (the bundled one served, ONNX Runtime): a candidate whose heads send most
    prompts to `general` (what a flood of wrong feedback would teach) falls on the hand-labelled dev set
    and the manifest keeps the served router."""
    from tandem.common.recipe_config import load_config
    from tandem.pipeline.loop import router as loop_router
    from tandem.pipeline.loop.config import LoopConfig
    from tandem.services.routing.heads import load_heads, save_heads

    artifacts = bundle_router(tmp_path / "artifacts")
    served = Manifest(artifacts).entry("router")
    rows = [{"suite": "traffic/general", "id": f"r{i}", "prompt": [{"role": "user", "content": q}], "tools": [],
             "correct_domain": LABEL} for i, q in enumerate(QUILLMATE)]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def broken_refit(config, train_rows, out):
        out.mkdir(parents=True)
        files = []
        for rec in served.files:
            shutil.copy2(artifacts / rec.path, out / Path(rec.path).name)
            files.append(out / Path(rec.path).name)
        embedding, token = load_heads(out / "heads.npz")
        general = json.loads((out / "router.json").read_text())["domains"].index("general")
        embedding.bias[general] += 4.0
        token.threshold = 1.01
        save_heads(out / "heads.npz", embedding, token)
        Manifest(out).record("router", "router", files, config=served.config, extra={"trained_on": {}})
        return {"broken": True}

    monkeypatch.setattr(loop_router, "refit", broken_refit)
    config = load_config(LoopConfig, ROOT / "configs/loop/router.yaml",
                         [f"artifacts_dir={artifacts}", f"work_dir={tmp_path / 'work'}", "traffic.logs=[unused]"])
    report = loop_router.run_router(config, tmp_path / "work", tmp_path / "raw.jsonl")
    assert report["status"] == "not_promoted", report
    gate = report["gate"]
    assert not gate["servable"] and "falls on the real dev set" in gate["reason"], gate["reason"]
    assert gate["dev"]["p_fall"] < 0.05 and gate["dev"]["losses"] > gate["dev"]["wins"]
    assert Manifest(artifacts).entry("router").files == served.files
    assert not (artifacts / "router-loop").exists()


def test_feedback_rows_are_checked_against_the_routers_test_and_dev_prompts(tmp_path):
    """Feedback repeating (exactly or edited) a real test or dev prompt never trains; one prompt is one row;
    a prompt labelled two ways as often is dropped; a train row near-duplicating a held-out one is dropped."""
    from tandem.common.recipe_config import load_config
    from tandem.pipeline.loop import router as loop_router
    from tandem.pipeline.loop.config import LoopConfig
    from tandem.training.routing.config import DATA_DIR

    test_prompt = next(p for p in (json.loads(line)["prompt"] for line in
                                   (DATA_DIR / "real_prompts_test.jsonl").read_text().splitlines())
                       if 20 <= len(p.split()) <= 80)
    dev_prompt = json.loads((DATA_DIR / "real_prompts_dev.jsonl").read_text().splitlines()[5])["prompt"]
    edited = "Hello, quick one: " + test_prompt + " Thanks a lot"  # an edited copy: not the same text
    raw = [(test_prompt, "code"), (edited, "code"), (dev_prompt, "general"), (QUILLMATE[0], LABEL),
           (QUILLMATE[0], LABEL), (QUILLMATE[1], LABEL), (QUILLMATE[1], "general"), (QUILLMATE[2], LABEL),
           ("Unrelated and unlabelled.", None), (QUILLMATE[3], "not-a-domain")]
    rows = [{"suite": "traffic/general", "id": f"r{i}", "prompt": [{"role": "system", "content": "be brief"},
                                                                    {"role": "user", "content": text}],
             "tools": ["run_job"] if i == 7 else [], "correct_domain": label} for i, (text, label) in enumerate(raw)]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = load_config(LoopConfig, ROOT / "configs/loop/router.yaml",
                         [f"artifacts_dir={tmp_path}", f"work_dir={tmp_path / 'work'}", "traffic.logs=[unused]"])
    domains = ["code", "reasoning", "automation", "general"]
    found, stats = loop_router.feedback_rows(tmp_path / "raw.jsonl", domains)
    assert stats["feedback_with_domain"] == 9 and stats["outside_domains_or_empty"] == 1
    assert stats["conflicting_labels"] == 1  # QUILLMATE[1]: automation once, general once
    assert sorted(r["text"] for r in found) == sorted([test_prompt, edited, dev_prompt, QUILLMATE[0], QUILLMATE[2]])
    assert next(r for r in found if r["text"] == QUILLMATE[0])["requests"] == 2
    assert next(r for r in found if r["text"] == QUILLMATE[2])["tools"] == [{"name": "run_job"}]
    kept, check = loop_router.check_rows(found, loop_router.held_out_sets(config, domains))
    assert sorted(r["text"] for r in kept) == sorted([QUILLMATE[0], QUILLMATE[2]])
    assert check["checked_against"]["real_test"] >= 400 and check["checked_against"]["real_dev"] >= 150

    # a train row that near-duplicates a held-out one does not train
    twins = [{"id": f"t{i}", "text": f"Ask Quillmate to back up the {name} database to the cold bucket every "
              "night at two and send the report to ops.", "label": LABEL, "tools": []}
             for i, name in enumerate(["billing", "orders", "users", "events", "audit", "search", "mail", "logs"])]
    train, heldout, near = loop_router.split_rows(twins, 0.5)
    assert heldout and near == len(twins) - len(heldout) and not train


def test_the_router_reloader_swaps_only_a_fully_built_new_router_and_keeps_the_old_one_on_failure():
    import asyncio

    from tandem.services.router.reload import DomainRouterReloader

    class R:
        def __init__(self, version):
            self.version = version

    served = {"router": R("a")}
    listed = {"version": "a"}
    builds = []

    def build():
        builds.append(listed["version"])
        if listed["version"] == "broken":
            raise ValueError("heads.npz is damaged")
        return R(listed["version"])

    reloader = DomainRouterReloader(lambda: served["router"], build, lambda: listed["version"],
                                    lambda new: served.__setitem__("router", new))
    assert asyncio.run(reloader()) == {"ok": True, "reloaded": False, "version": "a"}
    assert builds == []  # unchanged: nothing rebuilt
    listed["version"] = "b"
    old = served["router"]
    assert asyncio.run(reloader())["reloaded"] and served["router"].version == "b" and old.version == "a"

    async def two_at_once():  # the second waits for the first, then finds the new router current
        return await asyncio.gather(reloader(), reloader())
    listed["version"] = "c"
    first, second = asyncio.run(two_at_once())
    assert first["reloaded"] and not second["reloaded"] and builds == ["b", "c"]
    listed["version"] = "broken"
    result = asyncio.run(reloader())
    assert not result["ok"] and "damaged" in result["error"] and served["router"].version == "c"
    served["router"] = object()
    assert asyncio.run(reloader())["why"] == "this domain router has no artifact"
