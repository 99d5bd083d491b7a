"""`tandem eval` from the command line against a real `tandem up` (router + base_model, SmolLM2)."""

import json
import subprocess
import sys

import pytest

from tandem.eval.settings import ALL_SUITES


@pytest.mark.slow
def test_every_suite_runs_from_the_cli_against_tandem_up(tandem_up, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "tandem.cli",
        "eval",
        "--suite",
        "all",
        "--base-url",
        tandem_up.base_url,
        "--model",
        "tandem-base",
        "--limit",
        "1",
        "--max-tokens",
        "16",
        "--concurrency",
        "2",
        "--out",
        str(out),
        "--no-cache",
        "--timeout",
        "300",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("eval tandem-base: humaneval ") and "routing" in last and str(out) in last

    summary = json.loads((out / "summary.json").read_text())
    assert [s["suite"] for s in summary["suites"]] == ALL_SUITES
    for suite in ALL_SUITES[:-1]:
        (row,) = [json.loads(line) for line in (out / f"{suite}.jsonl").read_text().splitlines()]
        assert row["error"] is None, row["error"]
        assert row["route"]["route"] == "tandem-base" and row["route"]["request-id"].startswith("req-")
        assert 0 < row["completion_tokens"] <= 16 and row["prompt_tokens"] > 10
        assert row["score"] in (0.0, 1.0)
    routing = [json.loads(line) for line in (out / "routing.jsonl").read_text().splitlines()]
    assert routing and all(r["error"] is None and r["predicted"] for r in routing)
    assert summary["cost_by_route"]["tandem-base"]["cost"] > 0
