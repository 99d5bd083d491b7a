"""The whole tiny chain, raw data to served system, as a user runs it: `tandem pipeline --config
configs/pipeline/tiny.yaml` (a real CLI process, every stage's real recipe) into an empty artifacts
folder, then `tandem up --artifacts` on what it built, asked through the `openai` client.

What it checks is what the build left behind, not just exit codes: one manifest entry per stage with
its outputs' sha256 (re-hashed here) and the `trained_on` that flows down the DAG; the served base is
the compressed GGUF built from the fine-tuned, merged base; the modifier and router it serves are
this build's; the validation report exists with its plots and its gates; a rerun skips every stage.

~15-20 min on 2 cores (docs/PIPELINE.md, "Timings"): nightly (`make pipeline-test`), with the loop
test, since `make test` must fit CI's 45 minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tandem.common.manifest import Manifest, sha256_file
from tests.conftest import start_tandem_up, stop_tandem_up

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.nightly, pytest.mark.timeout(3600)]
GATES = ROOT / "configs" / "pipeline" / "gates.yaml"
STAGES = ["curate", "router", "base_sft", "merge", "compress", "modifiers", "escalation_labels", "escalation",
          "validation"]


def pipeline(artifacts: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tandem.cli", "pipeline", "--config", "configs/pipeline/tiny.yaml",
           f"artifacts_dir={artifacts}"]
    return subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess | None]:
    """The chain built into an empty folder here; or, with TANDEM_PIPELINE_TEST_ARTIFACTS, a folder that
    `tandem pipeline --config configs/pipeline/tiny.yaml artifacts_dir=...` built from empty (the same
    checks, without paying for a second build; the rerun test then rewrites its last_run.json)."""
    if reused := os.environ.get("TANDEM_PIPELINE_TEST_ARTIFACTS"):
        return Path(reused), None
    artifacts = tmp_path_factory.mktemp("pipeline") / "artifacts"
    return artifacts, pipeline(artifacts)


def succeeded(run: subprocess.CompletedProcess | None) -> None:
    """Exit 0, or 1 with the pipeline stopped at the validation stage's gates (the correct behaviour when
    a gate fails: the tiny build fails some by construction, docs/PIPELINE.md), never another failure."""
    if run is not None and run.returncode != 0:
        assert run.returncode == 1 and "gates failed (report:" in run.stderr, run.stderr[-4000:]


def gate_verdicts(artifacts: Path) -> list[dict]:
    return json.loads((artifacts / "stages" / "validation" / "figures.json").read_text())["gates"]


def test_the_tiny_chain_runs_every_stage_and_records_it(built):
    artifacts, run = built
    succeeded(run)
    manifest = Manifest(artifacts)
    verdicts = gate_verdicts(artifacts)
    failed = [v["figure"] for v in verdicts if not v["passed"]]
    print("gates failed:", failed or "none")
    # the exit status and the validation entry follow the gates: recorded (and exit 0) only if all pass
    assert (run is None or (run.returncode == 0) == (not failed))
    assert ("pipeline.validation" in manifest.entries()) == (not failed)
    if run is not None and failed:
        assert all(figure in run.stderr for figure in failed)
    recorded = [name for name in STAGES if name != "validation" or not failed]

    for name in recorded:
        entry = manifest.entry(f"pipeline.{name}")
        assert entry.files, name
        for record in entry.files:  # every output is on disk with the sha256 the manifest states
            assert sha256_file(artifacts / record.path) == record.sha256, record.path
        assert entry.extra["depends_on"] == list(entry.extra["upstream_outputs"])
        for dep, outputs in entry.extra["upstream_outputs"].items():  # and what it was built from
            assert outputs == json.loads((artifacts / "stages" / dep / "stage.json").read_text())["outputs"]

    def trained_on(name: str) -> dict[str, list]:
        return manifest.entry(f"pipeline.{name}").extra["trained_on"]

    # `trained_on` (eval-suite items a stage's models saw) flows down the DAG: each stage holds its
    # own plus everything upstream. The router and the modifier train on suites' train splits; the
    # curated ShareGPT rows of the base SFT are in no eval suite.
    assert trained_on("router") and trained_on("modifiers")
    for name in recorded:
        for dep in manifest.entry(f"pipeline.{name}").extra["depends_on"]:
            for source, items in trained_on(dep).items():
                assert set(items) <= set(trained_on(name).get(source, [])), (name, dep, source)
    assert set(trained_on("escalation")) >= set(trained_on("router")) | set(trained_on("modifiers"))

    # the served base is compression's output of the merged fine-tune; the modifier was trained on it
    base = manifest.entry("base")
    compress = manifest.entry("pipeline.compress")
    assert base.files[0].sha256 in {f.sha256 for f in compress.files}
    assert manifest.entry("pipeline.merge").extra["upstream_outputs"]["base_sft"]
    modifiers = manifest.entries("modifier")
    assert modifiers and all(m.base_sha256 == base.files[0].sha256 for m in modifiers.values())
    assert manifest.entry("router").files

    # the validation report renders, with its plots and every gate's verdict
    report = artifacts / "stages" / "validation"
    md, html = (report / "report.md").read_text(), (report / "report.html").read_text()
    plots = sorted(report.glob("*.png"))
    assert len(plots) == 3 and all(p.stat().st_size > 1000 for p in plots)
    assert all(p.name in md and p.name in html for p in plots)
    assert {v["figure"] for v in verdicts} == {g["figure"] for g in yaml.safe_load(GATES.read_text())["gates"]}
    assert all(v["figure"] in md and v["figure"] in html for v in verdicts)


def test_tandem_up_serves_the_build_to_an_openai_client(built):
    from openai import OpenAI

    artifacts, run = built
    succeeded(run)
    stack = start_tandem_up(artifacts, "ready_timeout_s=300")
    try:
        client = OpenAI(base_url=f"{stack.url}/v1", api_key="unused", timeout=600)
        reply = client.chat.completions.create(
            model="auto", max_tokens=48, temperature=0,
            messages=[{"role": "user", "content": "Write a Python function that adds two numbers."}])
        assert reply.choices[0].message.content.strip()
        assert reply.usage.completion_tokens > 0
        # it serves this build's modifiers that passed their gate, and only those
        models = {m.id for m in client.models.list()}
        modifiers = Manifest(artifacts).entries("modifier")
        assert modifiers
        assert {f"tandem-{name}" for name, m in modifiers.items() if m.servable} \
            == {m for m in models if m not in ("auto", "tandem-base")}, models
    finally:
        stop_tandem_up(stack)


def test_a_rerun_of_the_unchanged_chain_runs_nothing(built):
    """Validation is left out of the rerun: it measures the served stack again when its gates failed."""
    artifacts, run = built
    succeeded(run)
    cmd = [sys.executable, "-m", "tandem.cli", "pipeline", "--config", "configs/pipeline/tiny.yaml",
           f"artifacts_dir={artifacts}", "stages.validation.enabled=false"]
    again = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-4000:]
    last = json.loads((artifacts / "reports" / "pipeline" / "last_run.json").read_text())
    built_stages = [name for name in STAGES if name != "validation"]
    assert {name: last[name]["status"] for name in built_stages} == {name: "cached" for name in built_stages}
