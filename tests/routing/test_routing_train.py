"""`tandem router train` on a small slice: what lands in the output folder and the manifest."""

from __future__ import annotations

import json

from tandem.common.manifest import Manifest, sha256_file
from tandem.services.router.canary import PROBES_FILE
from tandem.services.routing.onnx_router import ARTIFACT_FILES


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
    shipped = [*ARTIFACT_FILES, PROBES_FILE]  # probes: the held-out rows the serving canary routes
    assert sorted(f.path for f in entry.files) == sorted(f"router/{name}" for name in shipped)
    for record in entry.files:
        assert sha256_file(trained_router.artifacts_dir / record.path) == record.sha256
    assert entry.metrics["size_mb"] < 25
    router = trained_router.report["evaluations"]["router"]
    assert entry.metrics["accuracy_test"] == router["test"]["accuracy"]
    assert entry.metrics["accuracy_real_test"] == router["real_test"]["accuracy"]
    low, high = entry.metrics["accuracy_real_test_ci95"]
    assert low < router["real_test"]["accuracy"] < high and high - low < 0.12  # n=450: about +-4 points
    assert "real_dev" in entry.extra["trained_on"] and "real_test" not in entry.extra["trained_on"]
    assert set(entry.extra["trained_on"]) >= {"gsm8k", "mbpp", "bfcl", "template_automation"}
    assert "humaneval" not in entry.extra["trained_on"]  # every HumanEval item is test
    assert all(splits == ["train", "dev"] for splits in entry.extra["trained_on"].values())


def test_small_slice_router_beats_the_keyword_baseline(trained_router):
    ev = trained_router.report["evaluations"]
    assert ev["router"]["test"]["n"] > 200
    assert ev["router"]["test"]["accuracy"] >= 0.8
    assert ev["router"]["test"]["accuracy"] > ev["keywords"]["test"]["accuracy"]
    assert ev["router"]["handwritten"]["n"] == 160
    assert ev["router"]["real_test"]["n"] == 450
    assert sum(map(sum, ev["router"]["real_test"]["confusion"])) == 450


def test_report_leads_with_the_real_prompt_test_set(trained_router):
    report = (trained_router.config.output_dir / "report.md").read_text()
    assert report.index("Headline: hand-labelled real prompts") < report.index("## Accuracy")
    assert "95% Wilson interval" in report and "| true (rows) / predicted (columns) |" in report
    assert trained_router.report["near_duplicates_dropped"] > 0


def test_calibration_is_reported_before_and_after(trained_router):
    calibration = trained_router.report["calibration"]["second-stage"]
    assert calibration["temperature"] > 0
    # T minimises NLL on the calibration rows (real dev), not ECE (on ~100 rows ECE moves either way:
    # 0.089 -> 0.110 in one small-slice run); a T applied the wrong way raises the NLL.
    assert calibration["nll_calibration_after"] <= calibration["nll_calibration_before"] + 1e-4
    assert 0 <= calibration["ece_calibration_after"] <= 0.25
    assert trained_router.report["calibrate_on"] == "real_dev"
