"""The modifier recipe end to end on a tiny base: data, LoRA SFT, GGUF export, held-out loss, the
task slice through `tandem up` + the harness, and the manifest entry the worker loads (or refuses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tandem.common.manifest import Manifest, sha256_file
from tandem.common.recipe_config import load_config
from tandem.training.modifiers.config import ModifierConfig
from tandem.training.modifiers.gate import servable_verdict

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "modifiers"


@pytest.mark.parametrize("domain", ["code", "reasoning", "automation"])
def test_shipped_recipes_validate_and_state_their_data_and_benchmark(domain):
    config = load_config(ModifierConfig, CONFIGS / f"{domain}.yaml", ["sft.max_steps=3"])
    assert config.domain == domain and config.sft.max_steps == 3
    assert "train:" in config.description and "evaluate:" in config.description
    assert config.sft.base_model == config.base_model == "embedded"


def test_a_recipe_whose_sft_base_differs_from_the_served_base_is_refused():
    from tandem.common.recipe_config import ConfigError

    with pytest.raises(ConfigError, match="sft.base_model"):
        load_config(ModifierConfig, CONFIGS / "code.yaml", ["sft.base_model=/some/other.gguf"])


@pytest.fixture(scope="module")
def trained(tiny_base_gguf, tmp_path_factory):
    from tandem.training.modifiers.recipe import run_modifier

    root = tmp_path_factory.mktemp("modifier_run")
    config = load_config(ModifierConfig, CONFIGS / "automation.yaml", [
        f"base_model={tiny_base_gguf}", f"artifacts_dir={root / 'artifacts'}", f"work_dir={root / 'work'}",
        "data.train_sources=[bfcl]", "data.train_limit_per_source=12", "data.dev_limit_per_source=4",
        "evaluation.heldout_limit=6", "evaluation.heldout_max_seq_len=1024", "evaluation.task.limit=3", "evaluation.task.max_tokens=24",
        "sft.max_steps=10", "sft.learning_rate=5e-3", "sft.batch_size=4", "sft.grad_accum=1", "sft.max_seq_len=768",
        "sft.eval_steps=5", "sft.logging_steps=5", "sft.gradient_checkpointing=false", "sft.lora.r=8",
        "axolotl.check_schema=false"])
    return config, run_modifier(config, task=True)


def test_recipe_lowers_heldout_loss_and_changes_what_the_served_model_says(trained):
    config, result = trained
    heldout = result.metrics["heldout"]
    assert heldout["modifier"]["rows"] == heldout["base"]["rows"] >= 1
    assert heldout["modifier"]["loss"] < heldout["base"]["loss"]
    task = json.loads((config.work_dir / "task.json").read_text())
    base_said = [r["response"] + json.dumps(r["tool_calls"]) for r in task["items"]["tandem-base"]]
    modifier_said = [r["response"] + json.dumps(r["tool_calls"]) for r in task["items"]["tandem-automation"]]
    errors = [r["error"] for rows in task["items"].values() for r in rows if r["error"]]
    assert task["n"] == 3 and not errors, errors
    assert {r["served_model"] for r in task["items"]["tandem-automation"]} == {"tandem-automation"}
    assert base_said != modifier_said
    assert (result.servable, result.reason) == servable_verdict(heldout, {
        "base": task["models"]["tandem-base"], "modifier": task["models"]["tandem-automation"],
        "difference": task["vs_base"]["tandem-automation"]})


def test_manifest_entry_is_what_the_worker_loads(trained, tiny_base_gguf):
    from tandem.services.worker.model_loading import resolve_served_models
    from tandem.services.worker.settings import WorkerSettings

    config, result = trained
    entry = Manifest(config.artifacts_dir).entry("automation")
    assert entry.kind == "modifier" and entry.files[0].path == "modifiers/automation.gguf"
    assert entry.base_sha256 == sha256_file(tiny_base_gguf)
    assert entry.extra["trained_on"] == {"bfcl": ["train", "dev"]}
    assert entry.servable is entry.extra["servable"] is result.servable
    assert entry.metrics["heldout"]["modifier"]["loss"] == result.metrics["heldout"]["modifier"]["loss"]
    axolotl = yaml.safe_load((config.work_dir / "axolotl.yaml").read_text())
    assert axolotl["adapter"] == "qlora" and axolotl["lora_r"] == 8 and axolotl["max_steps"] == 10
    assert Path(axolotl["datasets"][0]["path"]).read_text().count("\n") == result.metrics["sft"]["train_rows"] + \
        sum(result.metrics["sft"]["dropped_train_rows"].values())
    reports = config.artifacts_dir / "reports" / "modifiers" / "automation"
    assert {"config.json", "data.json", "heldout.json", "task.json", "report.json", "sft_loss_curve.png"} <= \
        {p.name for p in reports.iterdir()}
    if result.servable:
        served = resolve_served_models(WorkerSettings(model_path=str(tiny_base_gguf),
                                                      artifacts_dir=str(config.artifacts_dir), load_modifiers=True))
        assert "tandem-automation" in served.adapters


def test_worker_refuses_the_adapter_on_another_base(trained, tmp_path):
    from tandem.common.model_files import embedded_model_path
    from tandem.services.worker.model_loading import resolve_served_models
    from tandem.services.worker.settings import WorkerSettings

    config, _ = trained
    manifest = Manifest(tmp_path)
    (tmp_path / "modifiers").mkdir()
    adapter = tmp_path / "modifiers" / "automation.gguf"
    adapter.write_bytes((config.artifacts_dir / "modifiers" / "automation.gguf").read_bytes())
    entry = Manifest(config.artifacts_dir).entry("automation")
    manifest.record("automation", "modifier", [adapter], base_sha256=entry.base_sha256, servable=True)
    served = resolve_served_models(WorkerSettings(model_path=str(embedded_model_path()), artifacts_dir=str(tmp_path),
                                                  load_modifiers=True))
    assert "tandem-automation" not in served.adapters
    assert "was built for base" in served.refused["tandem-automation"]
