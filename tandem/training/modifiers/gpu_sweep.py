"""Train every modifier on a GPU with all its train rows, the learning rate and epochs chosen on dev loss.

    python -m tandem.training.modifiers.gpu_sweep --out build/gpu-sft              # rows built here
    python -m tandem.training.modifiers.gpu_sweep --rows build/gpu-rows --out build/gpu-sft
    python -m tandem.training.modifiers.gpu_sweep --write-rows build/gpu-rows       # on the data machine

For each domain (recipe under `configs/modifiers/<domain>.yaml`, its `sft` section with the GPU
sizes below) one LoRA run per learning rate in `--lrs` (`--jobs` of them at once), each for up to `--max-epochs` epochs with
an evaluation on every dev row four times an epoch; early stopping keeps the checkpoint of lowest
dev loss, so the epoch count is chosen by dev loss too. The run of lowest dev loss becomes
`<out>/<domain>/sft` (the layout `tandem build --from-sft <out>` reads), its adapter cast to f16
(what the GGUF export writes anyway; it halves the files a GPU box sends back). Seeds are fixed
(the recipe's `sft.seed`). `sweep.json` records every run's dev loss, steps and time.

Rows can be built elsewhere (`--write-rows`, needs the data packages) and carried to a GPU box
that has only torch, transformers and peft: the rows are plain chat JSONL.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import time
from pathlib import Path

from tandem.common.recipe_config import load_config
from tandem.training.modifiers.config import ModifierConfig

log = logging.getLogger("tandem.gpu_sweep")
DOMAINS = ["code", "reasoning", "automation"]
DEFAULT_LRS = [1e-4, 3e-4, 1e-3]
# GPU sizes: every train and dev row, no step or time cap (the CPU defaults in the YAMLs bound `make artifacts`).
GPU_OVERRIDES = ["sft.max_steps=-1", "sft.max_time_s=null", "sft.batch_size=16", "sft.grad_accum=1",
                 "sft.gradient_checkpointing=false", "sft.early_stopping_patience=2", "sft.save_total_limit=1",
                 "sft.logging_steps=10", "data.train_limit_per_source=null", "data.dev_limit_per_source=null"]


def write_rows(configs: list[ModifierConfig], rows_dir: Path) -> None:
    from tandem.training.modifiers.recipe import prepare_data

    for config in configs:
        config.work_dir.mkdir(parents=True, exist_ok=True)
        rows = prepare_data(config)
        out = rows_dir / config.domain
        out.mkdir(parents=True, exist_ok=True)
        for split in ("train", "dev"):
            with (out / f"{split}.jsonl").open("w") as fh:
                for row in rows[split]:
                    fh.write(json.dumps(row) + "\n")
        log.info("%s: %d train, %d dev rows -> %s", config.domain, len(rows["train"]), len(rows["dev"]), out)


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cast_adapter_f16(adapter_dir: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    path = adapter_dir / "adapter_model.safetensors"
    tensors = {k: v.to(torch.float16) for k, v in load_file(path).items()}
    save_file(tensors, path, metadata={"format": "pt"})


def _train_one(config_json: str, rows_dir: str, run_dir: str, lr: float, max_epochs: float) -> dict:
    """One LoRA run (a worker process of the sweep): its dev loss, steps and time."""
    from tandem.training.sft import run_sft

    config = ModifierConfig.model_validate_json(config_json)
    train = _read_rows(Path(rows_dir) / config.domain / "train.jsonl")
    dev = _read_rows(Path(rows_dir) / config.domain / "dev.jsonl")
    steps_per_epoch = math.ceil(len(train) / (config.sft.batch_size * config.sft.grad_accum))
    sft = config.sft.model_copy(update={"learning_rate": lr, "epochs": max_epochs, "output_dir": Path(run_dir),
                                        "eval_steps": max(1, steps_per_epoch // 4)})
    started = time.monotonic()
    metrics = run_sft(sft, train, dev).metrics
    return {"domain": config.domain, "learning_rate": lr, "dir": run_dir, "best_eval_loss": metrics["best_eval_loss"],
            "epochs_done": metrics["epochs_done"], "global_step": metrics["global_step"],
            "best_checkpoint": metrics["best_checkpoint"], "early_stopped": metrics["early_stopped"],
            "wall_s": time.monotonic() - started, "tokens_per_s": metrics["tokens_per_s"],
            "train_rows": len(train), "dev_rows": len(dev), "steps_per_epoch": steps_per_epoch}


def keep_best(config: ModifierConfig, runs: list[dict], out: Path, max_epochs: float) -> dict:
    """The run of lowest dev loss becomes `<out>/<domain>/sft`, its adapter cast to f16."""
    from tandem.common.manifest import Manifest
    from tandem.common.recipe_config import dump_config

    best = min(runs, key=lambda r: r["best_eval_loss"])
    chosen = out / config.domain / "sft"
    if chosen.exists():
        shutil.rmtree(chosen)
    shutil.copytree(best["dir"], chosen, ignore=shutil.ignore_patterns("checkpoints"))
    _cast_adapter_f16(chosen / "adapter")
    metrics = json.loads((chosen / "metrics.json").read_text())
    manifest = Manifest(chosen)
    base_sha = manifest.entry("adapter").base_sha256
    adapter_files = sorted(p for p in (chosen / "adapter").iterdir() if p.is_file())
    manifest.record("adapter", "adapter", adapter_files, base_sha256=base_sha,
                    config=dump_config(config.sft.model_copy(update={"learning_rate": best["learning_rate"]})),
                    metrics=metrics)
    summary = {"domain": config.domain, "train_rows": best["train_rows"], "dev_rows": best["dev_rows"],
               "steps_per_epoch": best["steps_per_epoch"], "max_epochs": max_epochs,
               "runs": sorted(runs, key=lambda r: r["learning_rate"]),
               "chosen": {"learning_rate": best["learning_rate"], "best_eval_loss": best["best_eval_loss"],
                          "epochs_done": best["epochs_done"]}}
    (out / config.domain / "sweep.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(out / config.domain / "runs", ignore_errors=True)  # only the chosen run travels back
    return summary


def sweep(configs: list[ModifierConfig], rows_dir: Path, out: Path, lrs: list[float], max_epochs: float,
          jobs: int) -> list[dict]:
    """Every (domain, learning rate) run, `jobs` at a time in their own processes (a 135M model
    leaves most of a GPU idle, so parallel runs cost little more wall time than one)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tandem.training.base_model import resolve_base

    for base in {c.sft.base_model for c in configs}:
        resolve_base(base)  # convert a GGUF base once, before the workers read the cached copy
    tasks = [(c.model_dump_json(), str(rows_dir), str(out / c.domain / "runs" / f"lr{lr:g}"), lr, max_epochs)
             for c in configs for lr in lrs]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = list(pool.map(_train_one, *zip(*tasks)))
    for run in runs:
        log.info("%s lr=%g: best dev loss %.4f after %.2f epochs (%.0f s)", run["domain"], run["learning_rate"],
                 run["best_eval_loss"], run["epochs_done"], run["wall_s"])
    return [keep_best(c, [r for r in runs if r["domain"] == c.domain], out, max_epochs) for c in configs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.gpu_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/gpu-sft"), help="Output folder (default %(default)s).")
    parser.add_argument("--rows", type=Path, default=None, help="Rows written by --write-rows (default: build them).")
    parser.add_argument("--write-rows", type=Path, default=None, help="Only write each domain's rows here, then stop.")
    parser.add_argument("--config-dir", type=Path, default=Path("configs/modifiers"))
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--lrs", default=",".join(f"{lr:g}" for lr in DEFAULT_LRS),
                        help="Learning rates to try (default %(default)s).")
    parser.add_argument("--max-epochs", type=float, default=3.0, help="Epochs per run at most (default %(default)s).")
    parser.add_argument("--jobs", type=int, default=1, help="Runs trained at once (default %(default)s; a GPU "
                        "fits every run of a 135M base at once).")
    parser.add_argument("overrides", nargs="*", help="key=value recipe overrides for every domain.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    configs = [load_config(ModifierConfig, args.config_dir / f"{d}.yaml",
                           [*GPU_OVERRIDES, f"work_dir=build/gpu-work/{d}", *args.overrides])
               for d in args.domains.split(",") if d]
    if args.write_rows:
        write_rows(configs, args.write_rows)
        return 0
    rows_dir = args.rows
    if rows_dir is None:
        rows_dir = args.out / "rows"
        write_rows(configs, rows_dir)
    lrs = [float(x) for x in args.lrs.split(",")]
    summaries = sweep(configs, rows_dir, args.out, lrs, args.max_epochs, args.jobs)
    (args.out / "sweep.json").write_text(json.dumps(summaries, indent=2))
    for s in summaries:
        print(f"{s['domain']}: lr {s['chosen']['learning_rate']:g}, {s['chosen']['epochs_done']:.2f} epochs, "
              f"dev loss {s['chosen']['best_eval_loss']:.4f} ({s['train_rows']} train rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
