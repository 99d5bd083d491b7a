"""LoRA fine-tuning throughput on one GPU: plain transformers + peft vs the runner's fast settings.

Random-initialised models with the shapes of Llama 3.2 1B and Llama 3.1 8B (no weights can be
fetched on the device machine), LoRA r=64 (alpha 128, dropout 0.05) on all seven linear layers of
every block, bf16 weights, AdamW on the adapter. Each variant runs in its own process (clean peak
memory; an out-of-memory variant fails alone) and times optimizer steps after warm-up with CUDA
synchronisation. tokens/s counts real tokens only (not pad or packing filler).

Rows:
  full     2048 random tokens per row (the issue's plain baseline: no padding at all)
  padded   rows with the real instruction-length distribution (instruction_lengths.json), padded
           to the longest row of each batch (what a plain collator does)
  packed   the same examples packed best-fit into 2048-token rows (tandem.training.packing)

    python bench/training/gpu_throughput.py --shapes 1b 8b --out bench/training/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SEQ_LEN = 2048
LENGTHS_FILE = Path(__file__).with_name("instruction_lengths.json")
SHAPES = {
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
               "num_key_value_heads": 8, "head_dim": 64, "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
               "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": False},
}
LLAMA3 = {"vocab_size": 128256, "max_position_embeddings": 8192, "rope_theta": 500000.0, "rms_norm_eps": 1e-5}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name -> settings; "plain" variants are what transformers + peft do out of the box.
VARIANTS = {
    "plain_full": {"rows": "full", "liger": False, "compile": False},
    "plain_padded": {"rows": "padded", "liger": False, "compile": False},
    "liger_full": {"rows": "full", "liger": True, "compile": False},
    "liger_packed": {"rows": "packed", "liger": True, "compile": False},
    "liger_packed_compile": {"rows": "packed", "liger": True, "compile": True},
    "liger_packed_autotune": {"rows": "packed", "liger": True, "compile": "max-autotune-no-cudagraphs"},
    "liger_packed_flex": {"rows": "packed", "liger": True, "compile": False, "attn": "flex_attention"},
}


def batches(rows: str, batch: int, steps: int, vocab: int, seed: int = 0):
    """Lists of (input_ids, labels, position_ids | attention_mask) tensors, and real-token counts."""
    import torch

    from tandem.training.packing import pack_rows

    rng = random.Random(seed)
    lengths = json.loads(LENGTHS_FILE.read_text())["lengths"]
    out = []
    if rows == "full":
        for _ in range(steps):
            ids = torch.randint(3, vocab, (batch, SEQ_LEN))
            out.append(({"input_ids": ids, "labels": ids.clone()}, ids.numel()))
        return out
    # enough examples for `steps` batches, drawn from the real length distribution
    examples = []
    while True:
        n = rng.choice(lengths)
        ids = [rng.randrange(3, vocab) for _ in range(n)]
        examples.append({"input_ids": ids, "labels": ids})
        if rows == "padded" and len(examples) >= batch * steps:
            break
        # a pool 4x the tokens needed, so the bins drawn are as full as a large dataset's
        if rows == "packed" and sum(len(e["input_ids"]) for e in examples) >= 4 * batch * steps * SEQ_LEN:
            break
    if rows == "packed":
        packed = pack_rows(examples, SEQ_LEN, pad_id=0)
        rng.shuffle(packed)
        for s in range(steps):
            chunk = packed[s * batch:(s + 1) * batch]
            t = {k: torch.tensor([r[k] for r in chunk]) for k in ("input_ids", "labels", "position_ids")}
            out.append((t, int((t["input_ids"] != 0).sum())))  # filler is pad id 0, tokens are >= 3
        return out
    for s in range(steps):
        chunk = examples[s * batch:(s + 1) * batch]
        width = max(len(e["input_ids"]) for e in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, e in enumerate(chunk):
            ids[i, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
            mask[i, :len(e["input_ids"])] = 1
        labels = ids.masked_fill(mask == 0, -100)
        out.append(({"input_ids": ids, "labels": labels, "attention_mask": mask}, int(mask.sum())))
    return out


def run_variant(shape: str, variant: str, batch: int, grad_ckpt: bool, steps: int, warmup: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    settings = VARIANTS[variant]
    if settings["liger"]:
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama()
    torch.manual_seed(0)
    config = LlamaConfig(**LLAMA3, **SHAPES[shape])
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16,
                                                 attn_implementation=settings.get("attn", "sdpa"))
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.05,
                                             target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    if settings["compile"]:
        mode = settings["compile"] if isinstance(settings["compile"], str) else None
        for layer in model.base_model.model.model.layers:
            layer.compile(mode=mode)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    data = batches(settings["rows"], batch, warmup + steps, config.vocab_size)
    torch.cuda.reset_peak_memory_stats()

    def step(inputs):
        loss = model(**{k: v.cuda(non_blocking=True) for k, v in inputs.items()}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    t_warm = time.perf_counter()
    for inputs, _ in data[:warmup]:
        loss = step(inputs)
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - t_warm
    start = time.perf_counter()
    tokens = 0
    for inputs, real in data[warmup:]:
        loss = step(inputs)
        tokens += real
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    slots = sum(inputs["input_ids"].numel() for inputs, _ in data[warmup:])
    return {"shape": shape, "variant": variant, **settings, "batch": batch, "grad_ckpt": grad_ckpt,
            "steps": steps, "tokens": tokens, "real_token_share": tokens / slots, "seconds": elapsed, "tokens_per_s": tokens / elapsed,
            "step_s": elapsed / steps, "warmup_s": warmup_s, "loss": float(loss),
            "peak_alloc_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
            "trainable_params": sum(p.numel() for p in params),
            "gpu": torch.cuda.get_device_name(), "torch": torch.__version__}


def table(results: list[dict]) -> str:
    lines = [f"{'shape':5} {'variant':22} {'bs':>3} {'gc':>3} {'tok/s':>9} {'x plain':>8} {'peak GiB':>9}  note"]
    base = {r["shape"]: r["tokens_per_s"] for r in results if r.get("variant") == "plain_full" and "error" not in r}
    for r in results:
        if "error" in r:
            lines.append(f"{r['shape']:5} {r['variant']:22} {r['batch']:>3} {int(r['grad_ckpt']):>3} "
                         f"{'-':>9} {'-':>8} {'-':>9}  {r['error'][:60]}")
            continue
        speedup = r["tokens_per_s"] / base[r["shape"]] if r["shape"] in base else float("nan")
        lines.append(f"{r['shape']:5} {r['variant']:22} {r['batch']:>3} {int(r['grad_ckpt']):>3} "
                     f"{r['tokens_per_s']:>9.0f} {speedup:>8.2f} {r['peak_alloc_gib']:>9.1f}  {r['gpu']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", nargs="+", default=["1b:plain_full:8:0", "1b:liger_packed:8:0"],
                        help="runs as shape:variant:batch:grad_ckpt(0/1)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per variant")
    parser.add_argument("--out", type=Path, default=Path("bench/training/results.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        shape, variant, batch, gc = args.one.split(":")
        print(json.dumps(run_variant(shape, variant, int(batch), gc == "1", args.steps, args.warmup)))
        return
    results = []
    for run in args.plan:
        shape, variant, batch, gc = run.split(":")
        print(f"--- {run}", flush=True)
        try:
            proc = subprocess.run([sys.executable, __file__, "--one", run, "--steps", str(args.steps),
                                   "--warmup", str(args.warmup)], capture_output=True, text=True,
                                  timeout=args.timeout, env=os.environ, check=False)
            line = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else ""
            result = json.loads(line) if line.startswith("{") else {
                "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        except subprocess.TimeoutExpired:
            result = {"error": f"timed out after {args.timeout}s"}
        result = {"shape": shape, "variant": variant, "batch": int(batch), "grad_ckpt": gc == "1"} | result
        results.append(result)
        print(json.dumps(result), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seq_len": SEQ_LEN, "lora": {"r": 64, "alpha": 128, "dropout": 0.05,
                                        "targets": LORA_TARGETS}, "results": results}, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
