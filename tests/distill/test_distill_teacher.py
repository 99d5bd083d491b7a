"""`tandem distill` against a real local OpenAI-compatible teacher over HTTP."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from teacher_server import TRAINING_PROMPT, TeacherServer

from tandem.common.manifest import Manifest
from tandem.eval.datasets import load_items
from tandem.training.distill import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def category(cid, name, suite, n=3):
    items = load_items(suite, split="dev", limit=n)
    examples = [
        {"suite": suite, "id": it.id, "score": 0.0, "prompt": it.messages[-1]["content"], "response": "wrong"}
        for it in items
    ]
    return {
        "id": cid,
        "name": name,
        "terms": name.split(" / "),
        "size": n,
        "suites": {suite: n},
        "examples": examples,
        "members": [{"suite": suite, "id": it.id} for it in items],
    }


@pytest.fixture
def inputs(tmp_path):
    failures = tmp_path / "failures.json"
    failures.write_text(
        json.dumps(
            {
                "categories": [
                    category(0, "eggs / dozen / total", "gsm8k"),
                    category(1, "function / list / string", "mbpp"),
                    category(2, "law / court / defendant", "mmlu"),
                ]
            }
        )
    )
    training = tmp_path / "curated.jsonl"
    training.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": TRAINING_PROMPT},
                    {"role": "assistant", "content": "Paris."},
                ]
            }
        )
        + "\n"
    )
    return failures, training


@pytest.fixture
def teacher():
    with TeacherServer(free_port()) as server:
        yield server


def base_args(failures, training, out, teacher, *extra):
    return [
        "distill",
        "--failures",
        str(failures),
        "--out",
        str(out),
        "--base-url",
        teacher.url,
        "--model",
        "teacher-test",
        "--training-data",
        str(training),
        "--max-usd",
        "1",
        "budget.price.input_per_mtok=1",
        "budget.price.output_per_mtok=2",
        "tasks_per_category=10",
        "tasks_per_request=5",
        "teacher.max_tokens=256",
        *extra,
    ]


def test_distill_checks_dedups_and_writes_sft_rows(tmp_path, inputs, teacher):
    out = tmp_path / "out"
    assert run_cli(base_args(*inputs, out, teacher)) == 0
    rows = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    stats = json.loads((out / "stats.json").read_text())
    per = stats["per_category"]
    # Batch 1 repeats an evaluation example, batch 2 a training prompt: both dropped, per category.
    for name in per:
        assert (
            per[name]["tasks"] == 10
            and per[name]["exact_duplicate"] == 2
            and per[name]["parsed_replies"] == 2
        )
    numeric = [r for r in rows if r["check"] == "numeric"]
    python = [r for r in rows if r["check"] == "python"]
    assert numeric and python and any(r["check"] is None for r in rows)
    for r in numeric:  # every kept numeric answer is right (the teacher's wrong ones were caught)
        a, b = (int(x) for x in __import__("re").findall(r"\d+", r["messages"][0]["content"])[:2])
        assert r["messages"][1]["content"].endswith(f"#### {a + b}")
    assert per["eggs / dozen / total"].get("check_failed:answers_disagree", 0) >= 1
    assert per["function / list / string"].get("check_failed:tests_failed", 0) >= 1
    assert len(rows) == sum(c.get("kept", 0) for c in per.values())
    assert all(r["messages"][0]["content"] != TRAINING_PROMPT for r in rows)
    assert {r["domain"] for r in python} == {"code"}
    # Every 500 was retried by the client, and the spend matches what the server billed.
    assert any(n > 1 for n in teacher.state.attempts.values())
    assert stats["spent_tokens"] == teacher.state.prompt_tokens + teacher.state.completion_tokens
    assert stats["requests_sent"] == len(teacher.state.answered) and not stats["budget_exhausted"]
    assert Manifest(out).entry("distilled-data").metrics["rows"] == len(rows)
    # Same command again: everything comes from the cache, nothing is sent or paid.
    sent = len(teacher.state.answered)
    assert run_cli(base_args(*inputs, out, teacher)) == 0
    again = json.loads((out / "stats.json").read_text())
    assert len(teacher.state.answered) == sent and again["spent_tokens"] == 0 and again["rows"] == len(rows)


@pytest.mark.parametrize("cap", [["--max-tokens", "2500"], ["--max-usd", "0.004"]])
def test_budget_caps_are_never_crossed(tmp_path, inputs, teacher, cap):
    out = tmp_path / "out"
    assert run_cli([*base_args(*inputs, out, teacher), *cap]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["budget_exhausted"] and stats["spent_tokens"] > 0
    billed = teacher.state.prompt_tokens + teacher.state.completion_tokens
    if cap[0] == "--max-tokens":
        assert billed <= 2500
    else:
        assert stats["spent_usd"] <= 0.004


def test_a_rerun_has_only_what_is_left_of_the_budget(tmp_path, inputs, teacher):
    """What earlier runs paid for (their replies are in the cache) counts against the cap: running the
    same command again does not get a fresh budget."""
    out = tmp_path / "out"
    args = [*base_args(*inputs, out, teacher), "--max-tokens", "2500"]
    assert run_cli(args) == 0
    first = json.loads((out / "stats.json").read_text())
    assert first["budget_exhausted"] and first["spent_tokens_total"] == first["spent_tokens"] > 0
    assert run_cli(args) == 0
    again = json.loads((out / "stats.json").read_text())
    billed = teacher.state.prompt_tokens + teacher.state.completion_tokens
    assert billed <= 2500  # over both runs together
    assert again["budget_exhausted"] and first["spent_tokens_total"] <= again["spent_tokens_total"] <= 2500
    assert again["spent_tokens_total"] == billed


def test_a_killed_run_resumes_without_resending(tmp_path, inputs, teacher):
    out = tmp_path / "out"
    teacher.state.delay_s = 0.05
    args = base_args(*inputs, out, teacher, "teacher.concurrency=2")
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); from tandem.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    child = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(teacher.state.answered) < 12 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    assert child.poll() is None, "the run finished before it could be killed"
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    first = {r["key"] for r in teacher.state.answered}
    teacher.state.delay_s = 0.0
    teacher.state.answered.clear()
    assert run_cli(args) == 0
    resent = {r["key"] for r in teacher.state.answered} & first
    assert len(resent) <= 2  # at most the requests in flight when it was killed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["cache_hits"] >= len(first) - 2 and stats["rows"] > 0


def test_a_teacher_without_a_price_needs_one(tmp_path, inputs, teacher, capsys):
    argv = [
        "distill",
        "--failures",
        str(inputs[0]),
        "--out",
        str(tmp_path / "o"),
        "--base-url",
        teacher.url,
        "--model",
        "unpriced-teacher",
    ]
    assert run_cli(argv) == 2
    assert "no price for teacher model" in capsys.readouterr().err


@pytest.mark.slow
def test_the_embedded_model_behind_tandem_up_can_be_the_teacher(tmp_path, tandem_up):
    """Real engine, real HTTP: whatever SmolLM2 writes is parsed, counted and paid for, never fatal."""
    out, failures = tmp_path / "out", tmp_path / "one-category.json"
    failures.write_text(json.dumps({"categories": [category(0, "eggs / dozen / total", "gsm8k", n=2)]}))
    settings = ["budget.max_usd=null", "tasks_per_category=2", "tasks_per_request=2", "teacher.max_tokens=48"]
    argv = ["distill", "--failures", str(failures), "--out", str(out), "--base-url", tandem_up.base_url]
    assert run_cli([*argv, "--model", "tandem-base", "--max-tokens", "20000", *settings]) == 0
    stats = json.loads((out / "stats.json").read_text())
    counts = stats["per_category"]["eggs / dozen / total"]
    assert stats["requests_sent"] >= 1 and 0 < stats["spent_tokens"] <= 20000
    # Its one request for tasks was parsed, or counted as unparseable.
    assert counts.get("unparseable_replies", 0) + counts.get("parsed_replies", 0) == 1
    rows = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert len(rows) == counts.get("kept", 0)
