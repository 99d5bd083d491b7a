"""The pipeline's DAG runner on cheap stages: order, content-hashed caching, what a changed config
reruns, the manifest entry of each stage, and failures that name their stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.common.manifest import Manifest, sha256_file
from tandem.pipeline.dag import PipelineError, Stage, StageContext, StageResult, order, run_pipeline


def make_stages(text: str, note: str, calls: list[str], suffix: str = "") -> list[Stage]:
    """source -> upper -> count, and an unrelated stage; `note` is a setting that does not change
    source's output, `text` one that does."""

    def source(ctx: StageContext) -> StageResult:
        calls.append("source")
        (ctx.out / "text.txt").write_text(text)
        return StageResult([ctx.out / "text.txt"], {"chars": len(text)}, {"gsm8k": ["gsm8k-7"]})

    def upper(ctx: StageContext) -> StageResult:
        calls.append("upper")
        source_out = ctx.artifacts / next(iter(ctx.upstream["source"]["outputs"]))
        (ctx.out / "upper.txt").write_text(source_out.read_text().upper() + suffix)
        return StageResult([ctx.out / "upper.txt"])

    def count(ctx: StageContext) -> StageResult:
        calls.append("count")
        upper_out = ctx.artifacts / next(iter(ctx.upstream["upper"]["outputs"]))
        (ctx.out / "count.json").write_text(json.dumps({"n": len(upper_out.read_text())}))
        return StageResult([ctx.out / "count.json"])

    def other(ctx: StageContext) -> StageResult:
        calls.append("other")
        (ctx.out / "other.txt").write_text("independent")
        return StageResult([ctx.out / "other.txt"])

    return [Stage("count", ("upper",), {}, count), Stage("upper", ("source",), {"suffix": suffix}, upper),
            Stage("source", (), {"text": text, "note": note}, source), Stage("other", (), {}, other)]


def statuses(runs) -> dict[str, str]:
    return {r.name: r.status for r in runs}


def test_rerun_skips_and_a_change_reruns_only_what_depends_on_it(tmp_path):
    artifacts, calls = tmp_path / "artifacts", []
    first = run_pipeline(make_stages("hello", "a", calls), artifacts)
    assert [r.name for r in first].index("source") < [r.name for r in first].index("upper") \
        < [r.name for r in first].index("count")
    assert set(statuses(first).values()) == {"ran"}
    assert (artifacts / "stages" / "count" / "count.json").read_text() == '{"n": 5}'

    calls.clear()
    assert set(statuses(run_pipeline(make_stages("hello", "a", calls), artifacts)).values()) == {"cached"}
    assert calls == []

    # a setting that leaves source's output byte-identical: source reruns, its dependants do not
    calls.clear()
    runs = statuses(run_pipeline(make_stages("hello", "b", calls), artifacts))
    assert runs == {"source": "ran", "upper": "cached", "count": "cached", "other": "cached"}

    # a change of output: source and everything downstream, not the unrelated stage
    calls.clear()
    runs = statuses(run_pipeline(make_stages("hello world", "b", calls), artifacts))
    assert runs == {"source": "ran", "upper": "ran", "count": "ran", "other": "cached"}
    assert sorted(calls) == ["count", "source", "upper"]
    assert json.loads((artifacts / "stages" / "count" / "count.json").read_text()) == {"n": 11}

    # a changed middle stage reruns itself and its dependant only
    calls.clear()
    runs = statuses(run_pipeline(make_stages("hello world", "b", calls, suffix="!"), artifacts))
    assert runs == {"source": "cached", "upper": "ran", "count": "ran", "other": "cached"}


def test_an_output_changed_on_disk_is_rebuilt(tmp_path):
    artifacts, calls = tmp_path / "artifacts", []
    run_pipeline(make_stages("hello", "a", calls), artifacts)
    (artifacts / "stages" / "upper" / "upper.txt").write_text("tampered")
    calls.clear()
    runs = statuses(run_pipeline(make_stages("hello", "a", calls), artifacts))
    assert runs["upper"] == "ran" and runs["source"] == "cached"
    assert (artifacts / "stages" / "upper" / "upper.txt").read_text() == "HELLO"
    assert runs["count"] == "cached"  # upper's output is the same bytes as before the tampering


def test_one_manifest_records_each_stage(tmp_path):
    artifacts = tmp_path / "artifacts"
    run_pipeline(make_stages("hello", "a", []), artifacts)
    entries = Manifest(artifacts).entries("stage")
    assert set(entries) == {"pipeline.source", "pipeline.upper", "pipeline.count", "pipeline.other"}
    upper = entries["pipeline.upper"]
    text = artifacts / "stages" / "source" / "text.txt"
    assert [f.path for f in upper.files] == ["stages/upper/upper.txt"]
    assert upper.files[0].sha256 == sha256_file(artifacts / "stages" / "upper" / "upper.txt")
    assert upper.extra["upstream_outputs"] == {"source": {"stages/source/text.txt": sha256_file(text)}}
    assert upper.extra["depends_on"] == ["source"]
    # trained_on flows downstream: what source saw, everything built from it has seen
    assert entries["pipeline.count"].extra["trained_on"] == {"gsm8k": ["gsm8k-7"]}
    assert entries["pipeline.other"].extra["trained_on"] == {}
    assert entries["pipeline.source"].metrics == {"chars": 5}
    assert Manifest(artifacts).verified_path("pipeline.count") == artifacts / "stages" / "count" / "count.json"


def test_a_failing_stage_is_named_and_stops_the_run(tmp_path):
    def boom(ctx: StageContext) -> StageResult:
        raise OSError("disk full")

    calls: list[str] = []
    stages = [*make_stages("hello", "a", calls), Stage("late", ("count",), {}, boom)]
    with pytest.raises(PipelineError, match="stage late failed: OSError: disk full"):
        run_pipeline(stages, tmp_path / "artifacts")
    calls.clear()
    with pytest.raises(PipelineError):
        run_pipeline(stages, tmp_path / "artifacts")
    assert calls == []  # the stages before it stay cached


def test_missing_outputs_missing_dependencies_and_cycles_are_refused(tmp_path):
    def liar(ctx: StageContext) -> StageResult:
        return StageResult([ctx.out / "never-written.txt"])

    with pytest.raises(PipelineError, match="never-written.txt does not exist"):
        run_pipeline([Stage("liar", (), {}, liar)], tmp_path / "a")
    with pytest.raises(PipelineError, match="not in the pipeline: ghost"):
        order([Stage("x", ("ghost",), {}, liar)])
    with pytest.raises(PipelineError, match="cycle"):
        order([Stage("x", ("y",), {}, liar), Stage("y", ("x",), {}, liar)])


def test_stage_folder_listing_skips_its_own_stage_file(tmp_path):
    def folder(ctx: StageContext) -> StageResult:
        (ctx.out / "model").mkdir(exist_ok=True)
        (ctx.out / "model" / "weights.bin").write_bytes(b"\0" * 10)
        return StageResult([ctx.out])

    artifacts = tmp_path / "artifacts"
    run_pipeline([Stage("folder", (), {}, folder)], artifacts)
    runs = run_pipeline([Stage("folder", (), {}, folder)], artifacts)
    assert runs[0].status == "cached"
    assert list(runs[0].state["outputs"]) == ["stages/folder/model/weights.bin"]
    assert Path(artifacts / "stages" / "folder" / "stage.json").is_file()


def test_trained_on_recorded_in_the_artifacts_manifest_flows_down(tmp_path):
    """The router and the modifiers write their files into <artifacts>/router/ and <artifacts>/modifiers/
    and their `trained_on` into the artifacts folder's manifest, not beside the files: the stage entry
    and everything downstream must still carry it (the tiny chain lost it before: its e2e test found it)."""
    artifacts = tmp_path / "artifacts"

    def router(ctx: StageContext) -> StageResult:
        (ctx.artifacts / "router").mkdir(parents=True, exist_ok=True)
        (ctx.artifacts / "router" / "head.npz").write_bytes(b"weights")
        Manifest(ctx.artifacts).record("router", "router", [ctx.artifacts / "router" / "head.npz"],
                                       extra={"trained_on": {"mbpp": ["train"]}})
        return StageResult([ctx.artifacts / "router" / "head.npz"])

    def validation(ctx: StageContext) -> StageResult:
        (ctx.out / "report.md").write_text("ok")
        return StageResult([ctx.out / "report.md"])

    run_pipeline([Stage("router", (), {}, router), Stage("validation", ("router",), {}, validation)], artifacts)
    manifest = Manifest(artifacts)
    assert manifest.entry("pipeline.router").extra["trained_on"] == {"mbpp": ["train"]}
    assert manifest.entry("pipeline.validation").extra["trained_on"] == {"mbpp": ["train"]}
