"""`tandem build` (= `make artifacts`) end to end on a tiny base: escalation models from the shipped
labels, two modifiers trained, exported, evaluated together through one `tandem up`, and an
artifacts folder that `tandem up` serves. The router step is covered by tests/routing (it embeds
~20k texts, minutes on 2 cores); here it is skipped with --no-router."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tandem.common.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]


def test_build_leaves_evaluated_modifiers_and_escalation_models(tiny_base_gguf, tmp_path):
    artifacts = tmp_path / "artifacts"
    tiny = [f"base_model={tiny_base_gguf}", "data.train_limit_per_source=8", "data.dev_limit_per_source=2",
            "evaluation.heldout_limit=3", "evaluation.task.limit=2", "evaluation.task.max_tokens=16",
            "sft.max_steps=2", "sft.eval_steps=2", "sft.batch_size=2", "sft.grad_accum=1", "sft.lora.r=4",
            "axolotl.check_schema=false"]
    done = subprocess.run([sys.executable, "-m", "tandem.cli", "build", "--artifacts", str(artifacts),
                           "--work-dir", str(tmp_path / "work"), "--domains", "code,automation", "--no-router",
                           "--cross-domain-limit", "1", *tiny],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    manifest = Manifest(artifacts)
    for domain in ("code", "automation"):
        entry = manifest.entry(domain)
        assert entry.kind == "modifier" and (artifacts / entry.files[0].path).is_file()
        assert entry.metrics["heldout"]["base"]["rows"] >= 1
        assert entry.metrics["task"]["n"] == 2
        other = "automation" if domain == "code" else "code"
        assert other in entry.metrics["cost_elsewhere"]  # measured on the other domain's slice
        assert entry.servable is entry.extra["servable"]
    for name in ("escalation-difficulty", "escalation-answer-confidence", "escalation-thresholds"):
        assert manifest.entry(name).kind == "escalation"
    thresholds = json.loads((artifacts / "escalation" / "thresholds.json").read_text())
    difficulty = thresholds["thresholds"]["difficulty"]  # {domain: threshold} for the domains with a model
    assert difficulty and all(0.0 < t < 1.0 for t in difficulty.values()) and thresholds["strong_source"]

    report = json.loads((artifacts / "reports" / "modifiers" / "build.json").read_text())
    assert {"escalation", "train_code", "train_automation", "task_eval", "total"} <= set(report["timings_s"])
    assert "router" not in report["timings_s"]
    table = (artifacts / "reports" / "modifiers" / "eval_table.md").read_text()
    assert "| code |" in table and "| automation |" in table
    summary = json.loads(done.stdout.strip().splitlines()[-2])
    assert set(summary["servable"]) == {"code", "automation"}


def test_evaluation_plan_measures_cost_on_a_domain_without_a_candidate():
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig
    from tandem.training.modifiers.evaluation_plan import evaluation_plan

    def config(domain):
        return load_config(ModifierConfig, ROOT / "configs" / "modifiers" / f"{domain}.yaml", [])

    slices, plan, full = evaluation_plan([config("automation")], {"tandem-automation": Path("a.gguf")}, 100, 240,
                                         [config("code"), config("reasoning"), config("automation")])
    assert list(slices) == ["automation", "code", "reasoning", "irrelevance"]
    assert plan["automation"] == ["tandem-base", "tandem-automation"]
    assert slices["automation"].limit is None  # the own task keeps its whole split
    for cost in ("code", "reasoning"):  # cost only: base and the candidate on the same 100 items
        assert plan[cost] == ["tandem-base", "tandem-automation"] and slices[cost].limit == 100
    assert slices["irrelevance"].limit == 240 and full == frozenset({"irrelevance"})
