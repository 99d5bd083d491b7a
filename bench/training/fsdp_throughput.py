"""LoRA throughput on several GPUs of one host with FSDP2 (issue 9), one process per GPU:

    NCCL_NVLS_ENABLE=0 torchrun --nproc_per_node N bench/training/fsdp_throughput.py --shape 8b \
        --batch 2 --liger --compile --out bench/training/fsdp_8b_N.json

Same model, LoRA (r=64, all linear layers, bf16) and 2048-token packed rows of real instruction
lengths as gpu_throughput.py; every decoder layer and the root are sharded with FSDP2
(`fully_shard`, what configs/training/accelerate_fsdp.yaml asks Accelerate for). Each rank
trains on its own rows; tokens/s is the sum over ranks. Runs on CPU processes (gloo) too, for the
`tiny` shape, which is how it is checked without GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gpu_throughput import LLAMA3, LORA_TARGETS, SHAPES, batches

SHAPES_ALL = SHAPES | {"tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                                    "tie_word_embeddings": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES_ALL), default="8b")
    parser.add_argument("--batch", type=int, default=2, help="packed 2048-token rows per GPU per step")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--liger", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile each decoder layer")
    parser.add_argument("--grad-ckpt", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import torch
    import torch.distributed as dist
    from peft import LoraConfig, get_peft_model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from transformers import AutoModelForCausalLM, LlamaConfig

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if args.liger:
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama()
    torch.manual_seed(0)
    dtype = torch.bfloat16 if cuda else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(LlamaConfig(**LLAMA3, **SHAPES_ALL[args.shape]), dtype=dtype,
                                                 attn_implementation="sdpa")
    if args.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.05,
                                             target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    layers = model.get_base_model().model.layers
    for layer in layers:
        fully_shard(layer, mp_policy=policy)
        if args.compile:
            layer.compile()
    fully_shard(model, mp_policy=policy)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=cuda)
    data = batches("packed", args.batch, args.warmup + args.steps, LLAMA3["vocab_size"], seed=rank)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step(inputs):
        loss = model(**{k: v.to(device) for k, v in inputs.items()}).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for inputs, _ in data[: args.warmup]:
        step(inputs)
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    start = time.perf_counter()
    tokens = 0
    for inputs, real in data[args.warmup:]:
        loss = step(inputs)
        tokens += real
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    elapsed = time.perf_counter() - start
    stats = torch.tensor([tokens, torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0],
                         dtype=torch.float64, device=device)
    gathered = [torch.zeros_like(stats) for _ in range(world)]
    dist.all_gather(gathered, stats)
    if rank == 0:
        total = sum(float(g[0]) for g in gathered)
        result = {"shape": args.shape, "gpus": world, "batch_per_gpu": args.batch, "liger": args.liger,
                  "compile": args.compile, "grad_ckpt": args.grad_ckpt, "steps": args.steps,
                  "tokens": total, "seconds": elapsed, "tokens_per_s": total / elapsed,
                  "tokens_per_s_per_gpu": total / elapsed / world, "loss": loss.item(),
                  "peak_alloc_gib_per_gpu": [float(g[1]) for g in gathered],
                  "device": torch.cuda.get_device_name() if cuda else "cpu"}
        print(json.dumps(result))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
