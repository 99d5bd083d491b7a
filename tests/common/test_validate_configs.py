"""Every shipped config validates (`tandem validate configs/`, as CI runs it), and mistakes are refused
by name: unknown keys, unregistered files, bad overrides."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.cli import main
from tandem.common.recipe_config import ConfigError, load_config, split_overrides
from tandem.training.base_recipe_config import BaseRecipeConfig

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_config_is_valid():
    """Through the real command line, in a fresh process, from the repository root."""
    proc = subprocess.run([sys.executable, "-m", "tandem.cli", "validate", "configs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shipped = sorted(p for p in (ROOT / "configs").rglob("*") if p.suffix in (".yaml", ".yml"))
    assert f"{len(shipped)}/{len(shipped)} configs valid" in proc.stdout


def test_a_typo_is_refused_naming_the_key_and_the_closest_field(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(BaseRecipeConfig, ROOT / "configs/training/base_qlora.yaml", ["sft.max_step=20"])
    message = str(err.value)
    assert "sft.max_step: unknown key; did you mean 'max_steps'?" in message
    assert "SFTConfig accepts:" in message


def test_validate_reports_every_bad_file_at_once(tmp_path, capsys):
    (tmp_path / "modifiers").mkdir()
    (tmp_path / "training").mkdir()
    code = (ROOT / "configs/modifiers/code.yaml").read_text()
    (tmp_path / "modifiers" / "code.yaml").write_text(code.replace("max_steps:", "max_step:"))
    accelerate = (ROOT / "configs/training/accelerate_fsdp.yaml").read_text()
    (tmp_path / "training" / "accelerate_x.yaml").write_text(accelerate + "bogus_key: 1\n")
    (tmp_path / "stray.yaml").write_text("a: 1\n")
    shutil.copy(ROOT / "configs/eval/prices.yaml", tmp_path / "prices.yaml")  # no folder: unclaimed too
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "did you mean 'max_steps'" in out
    assert "bogus_key" in out
    assert out.count("no schema is registered") == 2
    assert "0/4 configs valid" in out


def test_a_pipeline_config_is_validated_with_every_stage_override(tmp_path, capsys):
    (tmp_path / "pipeline").mkdir()
    tiny = (ROOT / "configs/pipeline/tiny.yaml").read_text()
    (tmp_path / "pipeline" / "tiny.yaml").write_text(tiny.replace("sft.max_steps=8", "sft.max_stepz=8"))
    assert main(["validate", str(tmp_path)]) == 1
    assert "stages.base_sft: invalid BaseRecipeConfig config" in capsys.readouterr().out


def test_one_override_syntax_positional_key_value():
    overrides, inputs = split_overrides(["a.jsonl", "near_dedup.threshold=0.85", "data/x=1.json::alpaca",
                                         "language.keep=[en,fr]"])
    assert overrides == ["near_dedup.threshold=0.85", "language.keep=[en,fr]"]
    assert inputs == ["a.jsonl", "data/x=1.json::alpaca"]
    with pytest.raises(SystemExit):  # the old `--set` spelling is gone everywhere
        main(["data", "curate", "--out", "x", "--set", "batch_size=3"])
