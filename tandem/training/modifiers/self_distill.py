"""Verified self-distillation rows for the code modifier (rejection sampling, as in STaR and RFT).

The base samples `k` answers to every MBPP *train* problem under the harness's own prompt and
chat template; an answer is kept only when its program passes that problem's tests in the
harness's sandbox (`tandem.eval.code_answers.mbpp_program` + `tandem.eval.sandbox.run_python`,
what `tandem eval` scores with). Kept answers, deduplicated by their extracted code and at most
`--per-item` per problem, are appended to the code rows as source `mbpp_self`: correct solutions
in the model's own phrasing, beside the gold ones, each as its code alone in one fenced block
(the gold rows' shape; the prose around a passing program is unchecked). Dev and test ids are never sampled, so the
code recipe's dev loss (MBPP dev gold rows) and every test figure are untouched.

    python -m tandem.training.modifiers.self_distill items --out build/sd/items.jsonl   # here: needs the data packages
    python -m tandem.training.modifiers.self_distill sample --items build/sd/items.jsonl \
        --rows build/gpu-rows-code --base /path/SmolLM2-135M-Instruct.Q4_1.gguf      # on a GPU box; appends to rows/code/train.jsonl

The sampling box needs torch, transformers and the GGUF reader (`gguf`), not the data packages.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tandem.training.modifiers.data.rows import code_block

log = logging.getLogger("tandem.self_distill")


def write_items(out: Path) -> int:
    """MBPP train items (harness prompt and tests) as JSONL, for a box without the data packages."""
    from tandem.eval.datasets import load_items

    items = load_items("mbpp", split="train")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(item.model_dump_json() + "\n" for item in items))
    return len(items)


def _generate(hf_dir: Path, prompts: list[list[dict]], k: int, temperature: float, top_p: float,
              max_new_tokens: int, batch_prompts: int, seed: int) -> list[list[str]]:
    """`k` sampled replies for each chat prompt (greedy never: diversity is the point)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.bfloat16).to(device).eval()
    replies: list[list[str]] = []
    for start in tqdm(range(0, len(prompts), batch_prompts), desc="sampling", unit="batch"):
        chunk = prompts[start:start + batch_prompts]
        texts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in chunk]
        enc = tokenizer(texts, return_tensors="pt", padding=True).to(device)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p,
                                 max_new_tokens=max_new_tokens, num_return_sequences=k,
                                 pad_token_id=tokenizer.pad_token_id)
        decoded = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        replies.extend(decoded[i * k:(i + 1) * k] for i in range(len(chunk)))
    return replies


def _passing(item: dict, replies: list[str], timeout_s: float) -> list[str]:
    """The code of each distinct reply whose program passes the item's tests."""
    from tandem.eval.code_answers import mbpp_code, mbpp_program
    from tandem.eval.sandbox import SandboxLimits, run_python

    seen: set[str] = set()
    kept = []
    for reply in replies:
        code = "\n".join(line.rstrip() for line in mbpp_code(reply, item["gold"]).strip("\n").splitlines())
        key = "\n".join(line for line in code.splitlines() if line.strip())
        if not key or key in seen:
            continue
        seen.add(key)
        if run_python(mbpp_program(reply, item["gold"]), SandboxLimits(timeout_s=timeout_s)).passed:
            kept.append(code)
    return kept


def distill_rows(items: list[dict], replies: list[list[str]], per_item: int, workers: int, timeout_s: float
                 ) -> tuple[list[dict], list[int]]:
    """Training rows from each item's passing replies, and how many distinct programs passed per item."""
    with ThreadPoolExecutor(workers) as pool:
        passing = list(pool.map(lambda pair: _passing(pair[0], pair[1], timeout_s), zip(items, replies)))
    rows = []
    for item, kept in zip(items, passing):
        for n, code in enumerate(kept[:per_item]):
            rows.append({"id": f"mbpp_self/{item['id']}/{n}",
                         "messages": [*item["messages"], {"role": "assistant", "content": code_block("python", code)}]})
    return rows, [len(kept) for kept in passing]


def sample(items_path: Path, rows_dir: Path, base: str, k: int, temperature: float, top_p: float,
           max_new_tokens: int, per_item: int, batch_prompts: int, seed: int, workers: int,
           timeout_s: float) -> dict:
    from tandem.training.base_model import resolve_base

    items = [json.loads(line) for line in items_path.read_text().splitlines() if line.strip()]
    started = time.monotonic()
    replies = _generate(resolve_base(base).hf_dir, [it["messages"] for it in items], k, temperature, top_p,
                        max_new_tokens, batch_prompts, seed)
    sampled_s = time.monotonic() - started
    rows, passing = distill_rows(items, replies, per_item, workers, timeout_s)
    train = rows_dir / "code" / "train.jsonl"
    gold = [line for line in train.read_text().splitlines() if line.strip()
            and not json.loads(line)["id"].startswith("mbpp_self/")]  # a rerun replaces, never doubles
    train.write_text("".join(line + "\n" for line in gold) + "".join(json.dumps(row) + "\n" for row in rows))
    stats = {"items": len(items), "k": k, "temperature": temperature, "top_p": top_p,
             "max_new_tokens": max_new_tokens, "per_item": per_item, "seed": seed,
             "items_with_a_pass": sum(1 for n in passing if n), "distinct_passing_programs": sum(passing),
             "rows_added": len(rows),
             "sampling_s": round(sampled_s, 1), "total_s": round(time.monotonic() - started, 1)}
    (rows_dir / "code" / "self_distill.json").write_text(json.dumps(stats, indent=2))
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.self_distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    items = sub.add_parser("items", help="Write the MBPP train items (prompt + tests) as JSONL.")
    items.add_argument("--out", type=Path, required=True)
    run = sub.add_parser("sample", help="Sample on a GPU, keep passing programs, append them to the code rows.")
    run.add_argument("--items", type=Path, required=True, help="JSONL written by `items`.")
    run.add_argument("--rows", type=Path, required=True, help="gpu_sweep --write-rows folder (its code/train.jsonl grows).")
    run.add_argument("--base", default="embedded", help="Base GGUF or HF folder (default %(default)s).")
    run.add_argument("--k", type=int, default=64, help="Samples per problem (default %(default)s).")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--top-p", type=float, default=0.95)
    run.add_argument("--max-new-tokens", type=int, default=384, help="As the task metric's max_tokens.")
    run.add_argument("--per-item", type=int, default=4, help="Distinct passing answers kept per problem at most.")
    run.add_argument("--batch-prompts", type=int, default=16, help="Problems per generate call (x k sequences).")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--workers", type=int, default=16, help="Sandbox runs at once.")
    run.add_argument("--timeout-s", type=float, default=3.0, help="Per-program time limit in the sandbox.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "items":
        print(f"{write_items(args.out)} MBPP train items -> {args.out}")
        return 0
    stats = sample(args.items, args.rows, args.base, args.k, args.temperature, args.top_p, args.max_new_tokens,
                   args.per_item, args.batch_prompts, args.seed, args.workers, args.timeout_s)
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
