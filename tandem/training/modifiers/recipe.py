"""The modifier recipe: one domain's LoRA, from the shipped data to a manifest entry.

Lifecycle (one readable function, torchtune-style):

1. setup: validate the config (done by `load_config`), resolve the base (GGUF -> HF, cached),
   build train / dev / held-out rows from the domain's sources (split files keep them apart);
2. train: `tandem.training.sft.run_sft` (peft LoRA, loss on assistant turns, early stopping on
   dev, checkpoints + resume, loss curve);
3. export: the adapter as a GGUF LoRA (`convert_lora_to_gguf.py`) into `<artifacts>/modifiers/`;
4. evaluate: held-out loss of the served base vs base + adapter GGUF (llama.cpp); the task metric on the domain's benchmark
   slice through the evaluation harness against a worker serving base + this adapter;
5. record: `manifest.json` entry (kind "modifier", name = domain, base sha256, recipe, metrics,
   `servable` from the gate) and a report folder beside it.

Written into `work_dir`: config.json (resolved), data.json (row counts and ids per split),
train.jsonl / dev.jsonl (the rendered rows) and axolotl.yaml (the same recipe for Axolotl on
8B-class bases, schema-checked where Axolotl installs), heldout.json, task.json, report.json;
SFT outputs under `sft/`.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.common.manifest import Manifest, write_json
from tandem.common.recipe_config import dump_config
from tandem.training.modifiers.config import ModifierConfig
from tandem.training.modifiers.data import build_rows, trained_on
from tandem.training.modifiers.gate import servable_verdict
from tandem.training.modifiers.tool_prompt import render_messages

log = logging.getLogger(__name__)


@dataclass
class ModifierResult:
    domain: str
    adapter_gguf: Path
    base_sha256: str
    metrics: dict[str, Any]
    servable: bool
    reason: str


def _sft_rows(rows) -> list[dict]:
    return [{"id": r.id, "messages": render_messages(r.messages, r.tools)} for r in rows]


def prepare_data(config: ModifierConfig) -> dict[str, list[dict]]:
    """Train, dev and held-out rows as plain chat rows; their ids and counts go to data.json."""
    data = config.data
    splits = {
        "train": build_rows(data.train_sources, "train", data.train_limit_per_source),
        "dev": build_rows(data.train_sources, "dev", data.dev_limit_per_source),
        "heldout": build_rows(config.evaluation.heldout_sources, "test", config.evaluation.heldout_limit),
    }
    write_json(config.work_dir / "data.json", {
        name: {"rows": len(rows), "by_source": _count_sources(rows), "ids": [r.id for r in rows]}
        for name, rows in splits.items()})
    return {name: _sft_rows(rows) for name, rows in splits.items()}


def _count_sources(rows) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.source] = counts.get(row.source, 0) + 1
    return counts


def record_modifier(config: ModifierConfig, adapter_gguf: Path, base_sha256: str, metrics: dict[str, Any],
                    servable: bool, reason: str) -> None:
    Manifest(config.artifacts_dir).record(
        config.domain, "modifier", [adapter_gguf.resolve()], base_sha256=base_sha256, config=dump_config(config),
        metrics=metrics, servable=servable, lora_scale=config.serving.lora_scale,
        tool_fit_min_similarity=config.serving.tool_fit_min_similarity,
        tool_args_min_grounding=config.serving.tool_args_min_grounding,
        extra={"trained_on": trained_on(config.data.train_sources), "servable": servable, "reason": reason,
               "heldout_sources": config.evaluation.heldout_sources, "task_suite": config.evaluation.task.suite})


def load_sft_result(sft_dir: Path, config: ModifierConfig) -> Any:
    """An SFT run made elsewhere (e.g. on a GPU box), checked to be on this config's base."""
    from tandem.common.manifest import sha256_file
    from tandem.common.model_files import resolve_model_path
    from tandem.training.base_model import resolve_base
    from tandem.training.sft import SFTResult

    entry = Manifest(sft_dir).entry("adapter")
    base_sha = sha256_file(resolve_model_path(config.base_model))
    if entry.base_sha256 != base_sha:
        raise ValueError(f"the SFT run in {sft_dir} was trained on base {str(entry.base_sha256)[:12]}, "
                         f"not on {config.base_model} ({base_sha[:12]})")
    metrics = json.loads((sft_dir / "metrics.json").read_text())
    return SFTResult(sft_dir, sft_dir / "adapter", resolve_base(config.base_model).hf_dir, base_sha, metrics,
                     sft_dir / "loss_curve.png")


def measure_heldout(config: ModifierConfig, adapter_gguf: Path, tokenizer_dir: Path, rows: list[dict]) -> dict:
    """Held-out losses, reused from work_dir/heldout.json when adapter, base, rows and length match
    (a re-run after a later step failed does not pay for them again)."""
    from tandem.common.manifest import sha256_file
    from tandem.common.model_files import resolve_model_path
    from tandem.training.modifiers.heldout import heldout_losses

    base = resolve_model_path(config.base_model)
    key = {"adapter_sha256": sha256_file(adapter_gguf), "base_sha256": sha256_file(base),
           "rows": [r["id"] for r in rows], "max_seq_len": config.evaluation.heldout_max_seq_len}
    if config.serving.lora_scale != 1.0:  # the loss of the adapter as served
        key["lora_scale"] = config.serving.lora_scale
    path = config.work_dir / "heldout.json"
    if path.is_file() and json.loads(path.read_text()).get("key") == key:
        log.info("%s: reusing held-out losses from %s", config.domain, path)
        return json.loads(path.read_text())
    heldout = heldout_losses(base, adapter_gguf, tokenizer_dir, rows, config.evaluation.heldout_max_seq_len,
                             config.evaluation.heldout_threads, lora_scale=config.serving.lora_scale)
    write_json(path, {**heldout, "key": key})
    return {**heldout, "key": key}


def train_modifier(config: ModifierConfig, sft_dir: Path | None = None) -> tuple[Path, Any, dict[str, Any]]:
    """Steps 1-4a: data, SFT, GGUF export, held-out loss. Returns (adapter GGUF, SFTResult, metrics).
    With `sft_dir`, the SFT step is taken from a finished run there instead of trained here."""
    from tandem.training.lora_export import export_lora_gguf
    from tandem.training.modifiers.axolotl import write_modifier_axolotl
    from tandem.training.sft import run_sft

    config.work_dir.mkdir(parents=True, exist_ok=True)
    write_json(config.work_dir / "config.json", dump_config(config))
    rows = prepare_data(config)
    log.info("%s: %d train, %d dev, %d held-out rows", config.domain, len(rows["train"]), len(rows["dev"]),
             len(rows["heldout"]))
    axolotl = write_modifier_axolotl(config.domain, config.sft, config.axolotl, config.work_dir, rows)
    sft = load_sft_result(sft_dir, config) if sft_dir else run_sft(config.sft, rows["train"], rows["dev"])
    if not sft.base_gguf_sha256:
        raise ValueError(f"base {config.base_model} has no GGUF sha256: serving cannot check the adapter's base")
    adapter_gguf = export_lora_gguf(sft.adapter_dir, sft.base_hf_dir, config.artifacts_dir / config.adapter_relpath)
    heldout = measure_heldout(config, adapter_gguf, sft.base_hf_dir, rows["heldout"])
    metrics = {"sft": sft.metrics, "heldout": heldout, "adapter_bytes": adapter_gguf.stat().st_size,
               "axolotl": axolotl}
    return adapter_gguf, sft, metrics


def copy_reports(config: ModifierConfig, sft_output: Path) -> Path:
    reports = config.artifacts_dir / "reports" / "modifiers" / config.domain
    reports.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "data.json", "heldout.json", "task.json", "report.json", "axolotl.yaml"):
        if (config.work_dir / name).is_file():
            shutil.copy2(config.work_dir / name, reports / name)
    for name in ("loss_curve.png", "metrics.json"):
        if (sft_output / name).is_file():
            shutil.copy2(sft_output / name, reports / f"sft_{name}")
    return reports


def finalize_modifier(config: ModifierConfig, adapter_gguf: Path, sft: Any, metrics: dict[str, Any],
                      task_result: dict[str, Any] | None,
                      elsewhere: dict[str, dict[str, Any]] | None = None) -> ModifierResult:
    """Step 5: gate on held-out loss, the task slice and the other slices (`elsewhere`: slice ->
    paired difference of this modifier vs the base), write the report, record the manifest entry."""
    if task_result is not None:
        metrics["task"] = {k: v for k, v in task_result.items() if k != "items"}
        write_json(config.work_dir / "task.json", task_result)
    model = f"tandem-{config.domain}"
    servable, reason = servable_verdict(metrics["heldout"], task_result and {
        "base": task_result["models"]["tandem-base"], "modifier": task_result["models"][model],
        "difference": task_result["vs_base"][model]},
        config.evaluation.min_loss_drop, config.evaluation.alpha, elsewhere)
    write_json(config.work_dir / "report.json", {"domain": config.domain, "servable": servable, "reason": reason,
                                                "metrics": metrics})
    record_modifier(config, adapter_gguf, sft.base_gguf_sha256, metrics, servable, reason)
    copy_reports(config, sft.output_dir)
    log.info("%s: servable=%s (%s)", config.domain, servable, reason)
    return ModifierResult(config.domain, adapter_gguf, sft.base_gguf_sha256, metrics, servable, reason)


def run_modifier(config: ModifierConfig, *, task: bool = True, sft_dir: Path | None = None) -> ModifierResult:
    """The whole chain for one domain. With `task=False` the task metric is skipped and the
    modifier is recorded as not servable (a modifier is served only once it has been measured)."""
    from tandem.training.modifiers.task_eval import compare_on_task

    adapter_gguf, sft, metrics = train_modifier(config, sft_dir)
    # Recorded first as not servable, so a crash below never leaves an unmeasured adapter served.
    record_modifier(config, adapter_gguf, sft.base_gguf_sha256, metrics, False, "task metric not measured yet")
    task_result = compare_on_task(config, {f"tandem-{config.domain}": adapter_gguf}) if task else None
    return finalize_modifier(config, adapter_gguf, sft, metrics, task_result)
