"""`tandem train base`: the Axolotl YAML (checked by Axolotl's own schema where an axolotl
virtualenv exists) and the native run, end to end from the CLI on a tiny Llama."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from training_samples import chat_rows, write_jsonl

from tandem.cli import main
from tandem.common.manifest import Manifest
from tandem.common.recipe_config import load_config
from tandem.services.engine.llama_loader import load_llama
from tandem.training.axolotl_yaml import (
    AxolotlValidationError,
    axolotl_config,
    axolotl_python,
    validate_axolotl_yaml,
    write_axolotl_yaml,
)
from tandem.training.base_recipe_config import BaseRecipeConfig

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "training" / "base_qlora.yaml"


def _recipe(tmp_path: Path, *overrides: str) -> BaseRecipeConfig:
    data = write_jsonl(tmp_path / "curated.jsonl", chat_rows(30))
    return load_config(BaseRecipeConfig, SHIPPED, [f"data.train={data}", f"sft.output_dir={tmp_path / 'out'}",
                                                   *overrides])


def test_axolotl_yaml_is_the_plans_qlora_run(tmp_path):
    recipe = _recipe(tmp_path)
    config = axolotl_config(recipe, tmp_path / "out")
    assert config["adapter"] == "qlora" and config["load_in_4bit"] is True
    assert config["lora_r"] == 64 and config["lora_target_linear"] is True
    assert config["num_epochs"] == 3 and config["val_set_size"] == 0.02
    assert config["early_stopping_patience"] == 3 and config["save_steps"] % config["eval_steps"] == 0
    assert config["sequence_len"] == 2048 and config["sample_packing"] is True
    dataset = config["datasets"][0]
    assert dataset["type"] == "chat_template" and dataset["field_messages"] == "messages"
    assert dataset["roles_to_train"] == ["assistant"] and Path(dataset["path"]).is_file()


@pytest.mark.skipif(axolotl_python() is None, reason="axolotl is not installed: create .cache/axolotl-venv "
                    "(docs/TRAINING.md) or set TANDEM_AXOLOTL_PYTHON to validate with Axolotl's schema")
def test_axolotl_schema_accepts_the_shipped_recipe_and_rejects_a_broken_one(tmp_path):
    recipe = _recipe(tmp_path)
    normalized = validate_axolotl_yaml(write_axolotl_yaml(recipe, tmp_path / "out"), axolotl_python())
    assert normalized["adapter"] == "qlora" and normalized["lora_r"] == 64
    broken = tmp_path / "broken.yaml"
    data = yaml.safe_load((tmp_path / "out" / "axolotl.yaml").read_text())
    broken.write_text(yaml.safe_dump(data | {"save_steps": 300, "eval_steps": 200}))  # early stopping needs eval | save
    with pytest.raises(AxolotlValidationError, match="eval_steps"):
        validate_axolotl_yaml(broken, axolotl_python())


def test_cli_writes_yaml_trains_exports_and_records(tmp_path, tiny_llama_dir, tiny_llama_gguf):
    data = write_jsonl(tmp_path / "curated.jsonl", chat_rows(30))
    out = tmp_path / "out"
    code = main(["train", "base", "--config", str(SHIPPED), f"data.train={data}", "data.val_fraction=0.2",
                 f"sft.output_dir={out}", f"sft.base_model={tiny_llama_dir}", "sft.max_steps=4",
                 "sft.eval_steps=2", "sft.max_seq_len=128", "sft.batch_size=2", "sft.grad_accum=1",
                 "sft.learning_rate=5e-3", "sft.lora.r=8", "axolotl.check_schema=false"])
    assert code == 0
    for name in ("axolotl.yaml", "recipe.json", "metrics.json", "loss_curve.png", "base_lora.gguf",
                 "adapter/adapter_model.safetensors"):
        assert (out / name).is_file(), name
    entries = Manifest(out).entries()
    assert {"axolotl-config", "adapter", "base-lora"} <= entries.keys()
    assert entries["base-lora"].metrics["global_step"] == 4
    llm = load_llama(str(tiny_llama_gguf), n_ctx=64, n_threads=2, lora_path=str(out / "base_lora.gguf"))
    assert llm.tokenize(b"hello")
