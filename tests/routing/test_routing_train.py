"""`tandem router train` on a small slice: what lands in the output folder and the manifest."""

from __future__ import annotations

import json

from tandem.common.manifest import Manifest, sha256_file
from tandem.routing.onnx_router import ARTIFACT_FILES


def test_output_folder_holds_artifact_report_and_resolved_config(trained_router):
    out = trained_router.config.output_dir
    for name in (*ARTIFACT_FILES, "report.md", "report.json", "confusion.png", "config.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["sources"]["gsm8k"]["limit"] == 30
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "nearest-centroid" in (out / "report.md").read_text()


def test_manifest_entry_lists_files_metrics_and_training_splits(trained_router):
    entry = Manifest(trained_router.artifacts_dir).entry("router")
    assert entry.kind == "router"
    assert sorted(f.path for f in entry.files) == sorted(f"router/{name}" for name in ARTIFACT_FILES)
    for record in entry.files:
        assert sha256_file(trained_router.artifacts_dir / record.path) == record.sha256
    assert entry.metrics["size_mb"] < 25
    assert entry.metrics["accuracy_test"] == trained_router.report["evaluations"]["router"]["test"]["accuracy"]
    assert set(entry.extra["trained_on"]) >= {"gsm8k", "mbpp", "bfcl", "template_automation"}
    assert "humaneval" not in entry.extra["trained_on"]  # every HumanEval item is test
    assert all(splits == ["train", "dev"] for splits in entry.extra["trained_on"].values())


def test_small_slice_router_beats_the_keyword_baseline(trained_router):
    ev = trained_router.report["evaluations"]
    assert ev["router"]["test"]["n"] > 200
    assert ev["router"]["test"]["accuracy"] >= 0.8
    assert ev["router"]["test"]["accuracy"] > ev["keywords"]["test"]["accuracy"]
    assert ev["router"]["handwritten"]["n"] == 160


def test_calibration_is_reported_before_and_after(trained_router):
    calibration = trained_router.report["calibration"]["second-stage"]
    assert calibration["temperature"] > 0
    # T minimises dev NLL, not ECE, so allow a little slack; a T applied the wrong way breaks this.
    assert 0 <= calibration["ece_dev_after"] <= calibration["ece_dev_before"] + 0.02
