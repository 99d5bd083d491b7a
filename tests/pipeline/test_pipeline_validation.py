"""The validation stage on a real served stack (the embedded base, escalation models fitted on the
committed labels): figures measured through `model=auto`, gates checked, the report rendered with
its plots, and a failed gate failing the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.common.model_files import resolve_model_path
from tandem.pipeline.config import ValidateStage
from tandem.pipeline.gates import Gate, GatesConfig, check_gates
from tandem.pipeline.validation import GateFailure, validate_build
from tandem.training.build import train_escalation

ROOT = Path(__file__).resolve().parents[2]


def test_gates_pass_fail_and_an_unmeasured_figure_fails():
    gates = GatesConfig(gates=[Gate(figure="routing.accuracy", min=0.8), Gate(figure="latency.p95_s", max=10),
                               Gate(figure="task.mmlu", min=0.2, max=0.9), Gate(figure="size.base_mb", max=50)])
    verdicts = check_gates(gates, {"routing.accuracy": 0.85, "latency.p95_s": 12.5, "task.mmlu": 0.3})
    assert [v["passed"] for v in verdicts] == [True, False, True, False]
    assert verdicts[3]["note"] == "not measured" and verdicts[3]["value"] is None
    assert verdicts[2]["bound"] == ">= 0.2 and <= 0.9"
    with pytest.raises(ValueError, match="needs min or max"):
        Gate(figure="task.mmlu")


@pytest.mark.slow
def test_validation_measures_the_served_stack_reports_and_fails_on_a_gate(tmp_path):
    artifacts = tmp_path / "artifacts"
    train_escalation(ROOT / "docs" / "escalation", artifacts)  # the cost-quality curve's data
    base = resolve_model_path("embedded")
    section = ValidateStage(suites={"mmlu": 4, "routing": 12}, max_tokens=8, concurrency=2)
    gates = GatesConfig(gates=[
        Gate(figure="size.base_mb", max=200, why="the embedded Q4_1 base is ~98 MB"),
        Gate(figure="escalation.answer_confidence_auroc", min=0.55),
        Gate(figure="task.mmlu", min=1.01, why="impossible on purpose: this gate must fail")])
    upstream = {"compress": {"figures": {"size_bytes_by_stage": {"source": 538_000_000, "quantize": 98_000_000}}}}
    out = tmp_path / "validation"
    with pytest.raises(GateFailure, match=r"1 of 3 gates failed .*task\.mmlu"):
        validate_build(artifacts, base, section, gates, upstream, out)

    figures = json.loads((out / "figures.json").read_text())["figures"]
    for figure in ("task.mmlu", "routing.accuracy", "latency.p95_s", "size.base_mb",
                   "escalation.answer_confidence_auroc"):
        assert isinstance(figures[figure], float), figure
    report = (out / "report.md").read_text()
    assert report.startswith("# Validation report: FAILED (2/3 gates)")
    assert "| task.mmlu |" in report and "| FAIL |" in report
    page = (out / "report.html").read_text()
    for plot in ("cost_quality.png", "domains.png", "size_by_stage.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
        assert f'src="{plot}"' in page
    assert (out / "eval" / "mmlu" / "summary.json").is_file()
