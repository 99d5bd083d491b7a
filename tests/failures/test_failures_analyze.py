"""`tandem analyze failures` on rows shaped like the eval harness's, made from shipped benchmark items."""

import argparse
import json
from collections import Counter

import pytest

from tandem.common.manifest import Manifest
from tandem.eval.datasets import load_items
from tandem.training.failures import cli

SUITES = {"gsm8k": 16, "mbpp": 16, "mmlu": 16, "bfcl": 16}


def run_cli(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def harness_row(item, score, **extra):
    return {
        "suite": item.suite,
        "dataset": item.dataset,
        "id": item.id,
        "split": "dev",
        "group": None,
        "model": "tandem-base",
        "prompt": item.messages,
        "response": "I am not sure.",
        "score": score,
        "error": None,
        "contaminated": [],
        **extra,
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    for suite, n in SUITES.items():
        items = load_items(suite, split="dev", limit=n + 4)
        rows = [harness_row(it, 0.0) for it in items[:n]]
        rows += [
            harness_row(items[n], 1.0),
            harness_row(items[n + 1], 0.0, error="timeout"),
            harness_row(items[n + 2], 0.0, contaminated=["modifiers/code"]),
        ]
        (folder / f"{suite}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    return folder


def test_failures_are_clustered_into_named_categories(tmp_path, results):
    out = tmp_path / "analysis"
    assert run_cli(["analyze", "failures", "--results", str(results), "--out", str(out)]) == 0
    report = json.loads((out / "failures.json").read_text())
    assert report["failures"] == sum(SUITES.values()) and report["evaluated"] == sum(SUITES.values()) + 4
    assert report["skipped"] == {"request_error": 4, "contaminated": 4, "unreadable": 4}
    assert report["failure_rate_by_suite"]["gsm8k"] == round(16 / 17, 4)
    assert 8 <= report["k"] <= 12 and set(report["silhouette_by_k"]) == {str(k) for k in range(8, 13)}
    cats = report["categories"]
    assert sum(c["size"] for c in cats) == report["failures"]
    assert all(c["name"] and len(c["terms"]) == 5 and 1 <= len(c["examples"]) <= 3 for c in cats)
    # Embeddings separate word problems, code tasks, exam questions and tool calls: most categories
    # hold one suite.
    purity = sum(max(c["suites"].values()) for c in cats) / report["failures"]
    assert purity >= 0.8, [c["suites"] for c in cats]
    member_ids = Counter((m["suite"], m["id"]) for c in cats for m in c["members"])
    assert len(member_ids) == report["failures"] and max(member_ids.values()) == 1
    # The harness's instruction lines are found and kept out of the names.
    assert any(line.startswith("Answer with the letter") for line in report["boilerplate_lines_removed"])
    assert not any("letter" in c["terms"] for c in cats)
    markdown = (out / "failures.md").read_text()
    assert markdown.count("\n## ") == report["k"] and "Top terms:" in markdown
    assert Manifest(out).entry("failure-analysis").metrics["k"] == report["k"]


def test_too_few_failures_is_an_error_not_a_crash(tmp_path, capsys):
    items = load_items("gsm8k", split="dev", limit=2)
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(harness_row(it, 0.0)) + "\n" for it in items))
    assert run_cli(["analyze", "failures", "--results", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "cannot form categories" in capsys.readouterr().err
    assert run_cli(["analyze", "failures", "--out", str(tmp_path / "out")]) == 2


@pytest.mark.slow
def test_runs_the_eval_harness_against_a_live_endpoint(tmp_path, tandem_up):
    """The embedded SmolLM2 behind `tandem up` answers multiple-choice items; its misses are analysed."""
    out = tmp_path / "live"
    code = run_cli(
        [
            "analyze",
            "failures",
            "--base-url",
            tandem_up.base_url,
            "--model",
            "tandem-base",
            "--suite",
            "mmlu,arc_challenge",
            "--limit",
            "5",
            "--max-tokens",
            "4",
            "--out",
            str(out),
            "k_min=2",
        ]
    )
    assert code == 0
    rows = [
        json.loads(line)
        for p in sorted((out / "eval").glob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert len(rows) == 10 and {r["suite"] for r in rows} == {"mmlu", "arc_challenge"}
    report = json.loads((out / "failures.json").read_text())
    failed = [r for r in rows if not r["error"] and r["score"] < 1.0]
    assert report["failures"] == len(failed) and sum(c["size"] for c in report["categories"]) == len(failed)
