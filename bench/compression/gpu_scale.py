"""Do the compression stages scale? Prune (SparseGPT 2:4) and AWQ (W4A16) of a real-size model on a GPU.

The same functions `tandem compress` runs (`tandem.compression.prune.prune`,
`tandem.compression.awq.apply_awq`, llm-compressor's `oneshot` underneath), on a random-initialised
Llama of the shape of Llama 3.2 1B / 3B or Llama 3.1 8B in bf16, one stage per process so each
peak memory is its own. No weights can be fetched on the device machine, so the model is random
and calibration windows are random token ids (any tokenizer serves as llm-compressor's
`processor`: the windows are already token ids). Timings and peak memory are what this shows;
quality needs real weights (see docs/COMPRESSION.md for the SmolLM2 stage table).

    python bench/compression/gpu_scale.py --tokenizer DIR --shapes 1b 3b --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SHAPES = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": True},  # a CPU smoke test
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 64, "tie_word_embeddings": True},
    "3b": {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24,
           "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": False},
}
LLAMA3 = {"vocab_size": 128256, "max_position_embeddings": 8192, "rope_theta": 500000.0, "rms_norm_eps": 1e-5}


def DEVICE() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_model(shape: str, folder: Path) -> None:
    """A random-initialised model saved to `folder` (llm-compressor re-reads the config from it)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(**LLAMA3, **SHAPES[shape])
    with torch.device(DEVICE()):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)


def run_stage(stage: str, folder: Path, tokenizer_dir: Path, samples: int, seq_len: int, n_grid: int) -> dict:
    import random

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tandem.compression.config import AWQConfig, PruneConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = random.Random(0)
    windows = [[rng.randrange(3, len(tokenizer)) for _ in range(seq_len)] for _ in range(samples)]
    cuda = DEVICE() == "cuda"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if cuda else torch.float32,
                                                 device_map=DEVICE())
    params = sum(p.numel() for p in model.parameters())
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if stage == "prune":
        from tandem.compression.prune import prune

        prune(model, tokenizer, windows, PruneConfig(method="sparsegpt", structure="2:4", sparsity=0.5))
    else:
        from tandem.compression.awq import apply_awq

        apply_awq(model, tokenizer, windows, AWQConfig(n_grid=n_grid))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    linear = [m.weight for name, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) and "lm_head" not in name]
    zeros = sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear)
    return {"stage": stage, "params": params, "seconds": seconds, "sparsity_linear": zeros,
            "peak_alloc_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else float("nan"),
            "calibration": {"samples": samples, "seq_len": seq_len},
            "gpu": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__}


def table(results: list[dict]) -> str:
    lines = [f"{'shape':5} {'stage':6} {'params':>7} {'seconds':>8} {'peak GiB':>9} {'sparsity':>9}  note"]
    for r in results:
        if "error" in r:
            lines.append(f"{r['shape']:5} {r['stage']:6} {'-':>7} {'-':>8} {'-':>9} {'-':>9}  {r['error'][:70]}")
        else:
            lines.append(f"{r['shape']:5} {r['stage']:6} {r['params'] / 1e9:>6.2f}B {r['seconds']:>8.1f} "
                         f"{r['peak_alloc_gib']:>9.1f} {r['sparsity_linear']:>9.3f}  {r['gpu']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=Path, required=True, help="Any HF tokenizer folder (processor).")
    parser.add_argument("--shapes", nargs="+", default=["1b"], choices=sorted(SHAPES))
    parser.add_argument("--stages", nargs="+", default=["prune", "awq"], choices=["prune", "awq"])
    parser.add_argument("--samples", type=int, default=64, help="Calibration windows.")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--n-grid", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=400, help="Seconds per stage.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tandem-gpu-scale"))
    parser.add_argument("--out", type=Path, default=Path("bench/compression/results_gpu.json"))
    parser.add_argument("--one", nargs=2, metavar=("STAGE", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=2, metavar=("SHAPE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_model(args.make[0], Path(args.make[1]))
        return
    if args.one:
        print(json.dumps(run_stage(args.one[0], Path(args.one[1]), args.tokenizer, args.samples, args.seq_len,
                                   args.n_grid)))
        return
    results = []
    for shape in args.shapes:
        folder = args.work / shape
        if not (folder / "config.json").is_file():
            subprocess.run([sys.executable, __file__, "--make", shape, str(folder), "--tokenizer", str(args.tokenizer)],
                           check=True, env=os.environ)
        for stage in args.stages:
            print(f"--- {shape} {stage}", flush=True)
            cmd = [sys.executable, __file__, "--one", stage, str(folder), "--tokenizer", str(args.tokenizer),
                   "--samples", str(args.samples), "--seq-len", str(args.seq_len), "--n-grid", str(args.n_grid)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=os.environ)
                line = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else ""
                result = json.loads(line) if line.startswith("{") else {
                    "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
            except subprocess.TimeoutExpired:
                result = {"error": f"timed out after {args.timeout}s"}
            results.append({"shape": shape, "stage": stage} | result)
            print(json.dumps(results[-1]), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"results": results}, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
