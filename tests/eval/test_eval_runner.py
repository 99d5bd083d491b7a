"""The runner against a real OpenAI-compatible HTTP server that answers with the gold replies:
every suite must score 1.0 end to end (prompt -> HTTP -> openai client -> extraction -> score)."""

import asyncio
import json

import pytest

from tandem.common.manifest import Manifest
from tandem.eval.contamination import ContaminationError
from tandem.eval.datasets import load_items
from tandem.eval.routing_suite import labelled_requests
from tandem.eval.runner import run_eval
from tandem.eval.settings import EvalSettings

SUITES = ["humaneval", "mbpp", "gsm8k", "math500", "arc_easy", "arc_challenge", "mmlu", "bfcl"]
LIMIT = 3


def settings_for(base_url, tmp_path, **overrides):
    fields = {"suites": SUITES, "limit": LIMIT, **overrides}
    return EvalSettings(
        base_url=base_url,
        model="auto",
        concurrency=4,
        out=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        **fields,
    )


@pytest.fixture
def oracle(oracle_server):
    items = [it for suite in SUITES for it in load_items(suite, split="test", limit=LIMIT)]
    return oracle_server(items)


def test_gold_answers_score_one_on_every_suite_and_rows_hold_the_facts(oracle, tmp_path):
    server, base_url = oracle
    summary = asyncio.run(run_eval(settings_for(base_url, tmp_path)))
    assert [s["suite"] for s in summary["suites"]] == SUITES
    for suite_summary in summary["suites"]:
        assert suite_summary["n"] == LIMIT
        assert suite_summary["score"] == 1.0, suite_summary["suite"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "bfcl.jsonl").read_text().splitlines()]
    assert len(rows) == LIMIT
    for row in rows:
        assert row["route"] == {"route": "tandem-base", "domain": "general", "escalated": "false"}
        assert row["prompt_tokens"] == 100 and row["completion_tokens"] == 20 and row["latency_s"] > 0
        assert row["prompt"] and row["split"] == "test" and not row["cached"]
    # 24 requests x (100 in, 20 out) on the tandem-* price (0.02 / 0.28 per 1M tokens).
    route = summary["cost_by_route"]["tandem-base"]
    assert route["requests"] == len(SUITES) * LIMIT
    assert route["cost"] == pytest.approx(24 * (100 * 0.02 + 20 * 0.28) / 1e6)
    assert summary["cost_if_all_on"]["gpt-4o"] == pytest.approx(24 * (100 * 2.5 + 20 * 10.0) / 1e6)
    table = (tmp_path / "out" / "summary.md").read_text()
    assert "| gsm8k | 3 | 1.000 |" in table and "gpt-4o" in table
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["suites"][0]["suite"] == "humaneval"


def test_rerun_is_served_from_the_cache(oracle, tmp_path):
    server, base_url = oracle
    asyncio.run(run_eval(settings_for(base_url, tmp_path, suites=["gsm8k", "arc_easy"])))
    asked = server.chat_requests
    summary = asyncio.run(run_eval(settings_for(base_url, tmp_path, suites=["gsm8k", "arc_easy"])))
    assert server.chat_requests == asked
    assert all(s["cached"] == LIMIT and s["score"] == 1.0 for s in summary["suites"])
    # Other sampling parameters are another cache key.
    asyncio.run(run_eval(settings_for(base_url, tmp_path, suites=["gsm8k"], seed=7)))
    assert server.chat_requests == asked + LIMIT


def test_contamination_guard_refuses_or_flags_trained_test_items(oracle, tmp_path):
    server, base_url = oracle
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "lora.gguf").write_bytes(b"x")
    manifest = Manifest(artifacts)
    manifest.record("reasoning", "modifier", ["lora.gguf"], extra={"trained_on": {"gsm8k": ["train", "dev"]}})
    clean = asyncio.run(run_eval(settings_for(base_url, tmp_path, suites=["gsm8k"], artifacts=artifacts)))
    assert clean["suites"][0]["contaminated"] == 0

    leaked = load_items("gsm8k", split="test", limit=LIMIT)[0].id
    manifest.record("leaky", "modifier", ["lora.gguf"], extra={"trained_on": {"gsm8k": {"ids": [leaked]}}})
    with pytest.raises(ContaminationError, match="leaky"):
        asyncio.run(run_eval(settings_for(base_url, tmp_path, suites=["gsm8k"], artifacts=artifacts)))
    flagged = asyncio.run(
        run_eval(
            settings_for(base_url, tmp_path, suites=["gsm8k"], artifacts=artifacts, allow_contaminated=True)
        )
    )
    assert flagged["suites"][0]["contaminated"] == 1 and flagged["suites"][0]["scored"] == LIMIT - 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "gsm8k.jsonl").read_text().splitlines()]
    assert [r["contaminated"] for r in rows if r["id"] == leaked] == [["leaky"]]


def test_routing_suite_reports_precision_recall_and_confusion(oracle_server, tmp_path):
    requests = labelled_requests("test", 2)
    # The oracle router is right except that it calls every automation prompt "code".
    domains = {
        r["messages"][-1]["content"]: ("code" if r["domain"] == "automation" else r["domain"])
        for r in requests
    }
    _, base_url = oracle_server([], domains)
    summary = asyncio.run(run_eval(settings_for(base_url, tmp_path, suites=["routing"], limit=2)))
    routing = summary["suites"][0]
    per = routing["per_domain"]
    n_auto = sum(r["domain"] == "automation" for r in requests)
    n_code = sum(r["domain"] == "code" for r in requests)
    assert routing["n"] == len(requests) and routing["errors"] == 0
    assert per["automation"]["recall"] == 0.0 and per["automation"]["precision"] is None
    assert per["code"]["recall"] == 1.0
    assert per["code"]["precision"] == pytest.approx(n_code / (n_code + n_auto))
    assert routing["confusion"]["automation"] == {"code": n_auto}
    assert routing["score"] == pytest.approx(1 - n_auto / len(requests))
    assert "true \\ predicted" in (tmp_path / "out" / "summary.md").read_text()


def test_routing_prompts_an_artifact_trained_on_are_refused_or_left_out(tmp_path):
    """The routing suite applies the benchmark suites' contamination guard instead of reporting 0."""
    from tandem.eval.contamination import ContaminationError
    from tandem.eval.runner import guard_routing_requests
    from tandem.eval.settings import EvalSettings

    requests = [{"id": "mbpp:11", "source": "mbpp"}, {"id": "mbpp:12", "source": "mbpp"},
                {"id": "handwritten:0", "source": "handwritten"}]
    trained = {"mbpp": {"router": {"11"}}}
    settings = EvalSettings(base_url="http://127.0.0.1:1/v1", model="auto", suites=["routing"], out=tmp_path)
    with pytest.raises(ContaminationError, match="1 of 3 routing prompts"):
        guard_routing_requests(requests, settings, trained)
    allowed = settings.model_copy(update={"allow_contaminated": True})
    kept, flagged = guard_routing_requests(requests, allowed, trained)
    assert flagged == 1 and [r["id"] for r in kept] == ["mbpp:12", "handwritten:0"]
    assert guard_routing_requests(requests, settings, {}) == (requests, 0)
