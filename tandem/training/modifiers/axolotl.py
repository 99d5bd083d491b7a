"""The modifier recipe as an Axolotl YAML, for GPU-scale runs on 8B-class bases (QLoRA, 4-bit).

The same hyperparameters (`sft`) and the same rendered chat rows as the native run; the YAML is
built by the base recipe's `axolotl_config` (one mapping of our settings to Axolotl's keys) and
checked against Axolotl's own schema where an Axolotl virtualenv exists. At Llama 3.1 8B, rank 8
on all linear projections gives the plan's ~42 MB per modifier (`adapter_size.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tandem.training.axolotl_yaml import axolotl_config, axolotl_python, validate_axolotl_yaml
from tandem.training.base_recipe_config import AxolotlSettings, BaseRecipeConfig, DataSettings
from tandem.training.sft_config import SFTConfig


def _write_rows(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"messages": row["messages"]}, ensure_ascii=False) + "\n")
    return path


def write_modifier_axolotl(domain: str, sft: SFTConfig, settings: AxolotlSettings, work_dir: Path,
                           rows: dict[str, list[dict]]) -> dict[str, Any]:
    """Write train/dev JSONL and `axolotl.yaml` into `work_dir`; validate where Axolotl installs."""
    data = DataSettings(train=_write_rows(work_dir / "train.jsonl", rows["train"]),
                        eval=_write_rows(work_dir / "dev.jsonl", rows["dev"]))
    recipe = BaseRecipeConfig(data=data, sft=sft, axolotl=settings, run_native=False)
    path = work_dir / "axolotl.yaml"
    header = (f"# Axolotl run of Tandem's '{domain}' modifier recipe; written by `tandem train modifier`.\n"
              "# Launch: axolotl train axolotl.yaml  (multi-GPU: accelerate launch -m axolotl.cli.train)\n")
    path.write_text(header + yaml.safe_dump(axolotl_config(recipe, work_dir), sort_keys=False))
    python = axolotl_python(settings.python)
    if not settings.check_schema:
        return {"path": str(path), "validated": False, "skipped": "check_schema is off"}
    if python is None:
        return {"path": str(path), "validated": False, "skipped": "no Axolotl virtualenv found"}
    validate_axolotl_yaml(path, python)
    return {"path": str(path), "validated": True}
