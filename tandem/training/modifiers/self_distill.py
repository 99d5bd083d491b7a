"""Verified self-distillation rows for the code modifier (rejection sampling, as in STaR and RFT).

The base samples `k` answers to every MBPP *train* problem under the harness's own prompt and
chat template; an answer is kept only when its program passes that problem's tests in the
harness's sandbox (`tandem.eval.code_answers.mbpp_program` + `tandem.eval.sandbox.run_python`,
what `tandem eval` scores with). Kept answers, deduplicated by their extracted code and at most
`--per-item` per problem, are appended to the code rows as source `mbpp_self`: correct solutions
in the model's own phrasing, beside the gold ones, each as its code alone in one fenced block
(the gold rows' shape; the prose around a passing program is unchecked). Dev and test ids are
never sampled, so the code recipe's dev loss (MBPP dev gold rows) and every test figure are
untouched.

    python -m tandem.training.modifiers.self_distill items --out build/sd/items.jsonl   # here: needs the data packages
    python -m tandem.training.modifiers.self_distill sample --items build/sd/items.jsonl \
        --out build/sd/samples.jsonl.gz --base /path/SmolLM2-135M-Instruct.Q4_1.gguf   # on a GPU box
    python -m tandem.training.modifiers.self_distill rows --items build/sd/items.jsonl \
        --samples build/sd/samples.jsonl.gz --rows build/gpu-rows-code               # appends to rows/code/train.jsonl

A second round (STaR's iteration) samples from the adapter the first round trained, on the problems
that have no passing program yet, and keeps the earlier round's rows:

    python -m tandem.training.modifiers.self_distill items --out build/sd2/items.jsonl --skip-solved build/gpu-rows-code
    python -m tandem.training.modifiers.self_distill sample --items build/sd2/items.jsonl --adapter ADAPTER_DIR --seed 1 ...
    python -m tandem.training.modifiers.self_distill rows --keep-earlier ...

Samples are saved before any is scored, so scoring can run (or rerun) anywhere. The sampling box
needs torch, transformers and the GGUF reader (`gguf`), not the data packages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tandem.training.chat_data import read_chat_jsonl
from tandem.training.modifiers.data.code import clean_code
from tandem.training.modifiers.data.rows import code_block

SELF_PREFIX = "mbpp_self/"


def _problem(row_id: str) -> str:
    """The MBPP id of a self-distilled row id `mbpp_self/<id>/<n>`."""
    return row_id.removeprefix(SELF_PREFIX).rsplit("/", 1)[0]


def solved_ids(rows_dir: Path) -> set[str]:
    """MBPP ids that already have a self-distilled row in `<rows>/code/train.jsonl`."""
    train = rows_dir / "code" / "train.jsonl"
    return {_problem(row["id"]) for row in read_chat_jsonl(train) if row["id"].startswith(SELF_PREFIX)}


def write_items(out: Path, skip: set[str] = frozenset()) -> int:
    """MBPP train items (harness prompt and tests) as JSONL, for a box without the data packages;
    ids in `skip` left out."""
    from tandem.eval.datasets import load_items

    items = [it for it in load_items("mbpp", split="train") if it.id not in skip]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(item.model_dump_json() + "\n" for item in items))
    return len(items)


def _generate(hf_dir: Path, prompts: list[list[dict]], k: int, temperature: float, top_p: float,
              max_new_tokens: int, batch_prompts: int, seed: int, adapter: Path | None = None) -> list[list[str]]:
    """`k` sampled replies for each chat prompt (greedy never: diversity is the point), from the base
    or, with `adapter` (a peft LoRA folder), from the base with the adapter merged in."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.bfloat16)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model = model.to(device).eval()
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


def _passing(item: dict, replies: list[str], per_item: int, timeout_s: float) -> tuple[list[str], int]:
    """The code of distinct replies whose programs pass the item's tests, in sampling order, scored
    until `per_item` have passed; and how many programs were run."""
    from tandem.eval.code_answers import mbpp_code, mbpp_program
    from tandem.eval.sandbox import SandboxLimits, run_python

    seen: set[str] = set()
    kept: list[str] = []
    for reply in replies:
        if len(kept) >= per_item:
            break
        code = clean_code(mbpp_code(reply, item["gold"]))
        key = "\n".join(line for line in code.splitlines() if line.strip())
        if not key or key in seen:
            continue
        seen.add(key)
        if run_python(mbpp_program(reply, item["gold"]), SandboxLimits(timeout_s=timeout_s)).passed:
            kept.append(code)
    return kept, len(seen)


def distill_rows(items: list[dict], replies: list[list[str]], per_item: int, workers: int, timeout_s: float
                 ) -> tuple[list[dict], dict]:
    """Training rows from each item's passing replies, and what scoring them took."""
    from tqdm import tqdm

    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(lambda pair: _passing(pair[0], pair[1], per_item, timeout_s),
                                     zip(items, replies)), total=len(items), desc="scoring", unit="problem"))
    rows = []
    for item, (kept, _run) in zip(items, results):
        rows.extend({"id": f"{SELF_PREFIX}{item['id']}/{n}",
                     "messages": [*item["messages"], {"role": "assistant", "content": code_block("python", code)}]}
                    for n, code in enumerate(kept))
    return rows, {"items_with_a_pass": sum(1 for kept, _ in results if kept), "rows": len(rows),
                  "programs_run": sum(run for _, run in results)}


def sample(items_path: Path, out: Path, base: str, k: int, temperature: float, top_p: float,
           max_new_tokens: int, batch_prompts: int, seed: int, adapter: Path | None = None) -> dict:
    """Sample and save every reply (gzipped JSONL, one line per item) before anything scores them."""
    from tandem.training.base_model import resolve_base

    items = read_chat_jsonl(items_path)
    started = time.monotonic()
    replies = _generate(resolve_base(base).hf_dir, [it["messages"] for it in items], k, temperature, top_p,
                        max_new_tokens, batch_prompts, seed, adapter)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt") as fh:
        fh.writelines(json.dumps({"id": it["id"], "replies": r}) + "\n" for it, r in zip(items, replies))
    stats = {"items": len(items), "k": k, "temperature": temperature, "top_p": top_p,
             "max_new_tokens": max_new_tokens, "seed": seed, "adapter": str(adapter) if adapter else None,
             "sampling_s": round(time.monotonic() - started, 1)}
    out.with_suffix("").with_suffix(".json").write_text(json.dumps(stats, indent=2))
    return stats


def add_rows(items_path: Path, samples: Path, rows_dir: Path, per_item: int, workers: int, timeout_s: float,
             keep_earlier: bool = False) -> dict:
    """Score saved samples and append the passing ones to `<rows>/code/train.jsonl`. A rerun replaces
    the self-distilled rows of the problems it scores; with `keep_earlier` the rows of other problems
    (an earlier round's) stay, without it every earlier self-distilled row goes."""
    items = {it["id"]: it for it in read_chat_jsonl(items_path)}
    with gzip.open(samples, "rt") as fh:
        sampled = [json.loads(line) for line in fh if line.strip()]
    started = time.monotonic()
    rows, stats = distill_rows([items[s["id"]] for s in sampled], [s["replies"] for s in sampled], per_item,
                               workers, timeout_s)
    train = rows_dir / "code" / "train.jsonl"
    scored = {s["id"] for s in sampled}

    def kept(row_id: str) -> bool:
        return not row_id.startswith(SELF_PREFIX) or (keep_earlier and _problem(row_id) not in scored)

    lines = [line for line in train.read_text().splitlines() if line.strip() and kept(json.loads(line)["id"])]
    earlier = sum(json.loads(line)["id"].startswith(SELF_PREFIX) for line in lines)
    train.write_text("".join(line + "\n" for line in lines) + "".join(json.dumps(row) + "\n" for row in rows))
    stats |= {"items": len(sampled), "per_item": per_item, "timeout_s": timeout_s,
              "gold_rows": len(lines) - earlier, "earlier_self_rows": earlier,
              "scoring_s": round(time.monotonic() - started, 1)}
    (rows_dir / "code" / "self_distill.json").write_text(json.dumps(stats, indent=2))
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.training.modifiers.self_distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    items = sub.add_parser("items", help="Write the MBPP train items (prompt + tests) as JSONL.")
    items.add_argument("--out", type=Path, required=True)
    items.add_argument("--skip-solved", type=Path, help="A rows folder: leave out problems it already has "
                       "self-distilled rows for (a second round).")
    run = sub.add_parser("sample", help="Sample k replies per problem (GPU) and save them all.")
    run.add_argument("--items", type=Path, required=True, help="JSONL written by `items`.")
    run.add_argument("--out", type=Path, required=True, help="Samples file (.jsonl.gz); stats beside it.")
    run.add_argument("--base", default="embedded", help="Base GGUF or HF folder (default %(default)s).")
    run.add_argument("--k", type=int, default=64, help="Samples per problem (default %(default)s).")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--top-p", type=float, default=0.95)
    run.add_argument("--max-new-tokens", type=int, default=384, help="As the task metric's max_tokens.")
    run.add_argument("--batch-prompts", type=int, default=16, help="Problems per generate call (x k sequences).")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--adapter", type=Path, help="A peft LoRA folder merged into the base before sampling "
                     "(a second round samples from the first round's adapter).")
    keep = sub.add_parser("rows", help="Score saved samples in the sandbox; append the passing ones to the code rows.")
    keep.add_argument("--items", type=Path, required=True)
    keep.add_argument("--samples", type=Path, required=True, help="Written by `sample`.")
    keep.add_argument("--rows", type=Path, required=True, help="gpu_sweep --write-rows folder (its code/train.jsonl grows).")
    keep.add_argument("--per-item", type=int, default=4, help="Distinct passing answers kept per problem at most.")
    keep.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                      help="Sandbox runs at once (default: one per core; more would let busy cores, not the "
                      "program, hit the per-program time limit).")
    keep.add_argument("--timeout-s", type=float, default=1.0, help="Per-program time limit (MBPP tests take ms).")
    keep.add_argument("--keep-earlier", action="store_true", help="Keep the self-distilled rows of problems "
                      "these samples do not cover (an earlier round's).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "items":
        skip = solved_ids(args.skip_solved) if args.skip_solved else set()
        print(f"{write_items(args.out, skip)} MBPP train items -> {args.out} ({len(skip)} solved left out)")
        return 0
    if args.command == "sample":
        stats = sample(args.items, args.out, args.base, args.k, args.temperature, args.top_p, args.max_new_tokens,
                       args.batch_prompts, args.seed, args.adapter)
    else:
        stats = add_rows(args.items, args.samples, args.rows, args.per_item, args.workers, args.timeout_s,
                         args.keep_earlier)
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
