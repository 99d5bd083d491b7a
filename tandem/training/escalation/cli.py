"""`tandem escalation`: collect labels, train the escalation models, calibrate the threshold.

    tandem escalation collect   --suites arc_easy=300,gsm8k=150 --split train (--base-url URL | --model-path GGUF
                                | --answers answers.jsonl) --out labels/train.jsonl [--dump-items items.jsonl]
    tandem escalation answer    --items items.jsonl --model-path GGUF --out answers.jsonl
    tandem escalation rescore   --labels labels/dev.jsonl.gz --out labels/dev.rescored.jsonl.gz
    tandem escalation train     --train labels/train.jsonl --heldout labels/dev.jsonl --artifacts artifacts
    tandem escalation calibrate --heldout labels/dev.jsonl --artifacts artifacts --target quality=0.9

`answer` is the bare-machine half of `collect`: it needs only llama-cpp-python and pydantic, so
it runs where the benchmarks and the service stack are not installed; `collect --answers` scores
its output here. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MAX_TOKENS = {"arc_easy": 64, "arc_challenge": 64, "mmlu": 64, "gsm8k": 256, "mbpp": 384, "bfcl": 256}


def _suite_limits(value: str) -> dict[str, int]:
    out = {}
    for part in value.split(","):
        name, _, limit = part.partition("=")
        out[name.strip()] = int(limit) if limit else 100
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("escalation", help="Escalation models: collect labels, train, calibrate.")
    sub = parser.add_subparsers(dest="escalation_command", metavar="STEP", required=True)

    collect = sub.add_parser("collect", help="Label benchmark items: does the local route fail them?")
    collect.add_argument("--suites", type=_suite_limits, required=True, help="suite=limit,... e.g. gsm8k=150")
    collect.add_argument("--split", default="train", choices=["train", "dev"], help="never test: it is the eval's")
    source = collect.add_mutually_exclusive_group(required=True)
    source.add_argument("--base-url", help="OpenAI-style URL of the local route (router or worker)")
    source.add_argument("--model-path", help="GGUF to answer with in-process (the worker's engine)")
    source.add_argument("--answers", type=Path, help="answers written by `tandem escalation answer`")
    source.add_argument("--dump-items", type=Path, help="only write the items (for `answer` elsewhere)")
    collect.add_argument("--model", default="tandem-base", help="`model` sent with --base-url")
    collect.add_argument("--concurrency", type=int, default=4)
    collect.add_argument("--out", type=Path, help="labels JSONL")
    collect.set_defaults(func=_collect)

    answer = sub.add_parser("answer", help="Answer dumped items in-process (bare machine half of collect).")
    answer.add_argument("--items", type=Path, required=True)
    answer.add_argument("--model-path", required=True)
    answer.add_argument("--out", type=Path, required=True)
    answer.add_argument("--slots", type=int, default=8)
    answer.add_argument("--threads", type=int, default=None)
    answer.set_defaults(func=_answer)

    rescore = sub.add_parser("rescore", help="Score stored labels' answers again with today's scorers "
                             "(after a scorer fix); answers, routes and logprobs are kept.")
    rescore.add_argument("--labels", type=Path, required=True, help="labels JSONL (.gz read and written gzipped)")
    rescore.add_argument("--out", type=Path, required=True)
    rescore.set_defaults(func=_rescore)

    from tandem.training.escalation.training_cli import register_steps
    register_steps(sub)


def _collect(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from tandem.eval.datasets import load_items
    from tandem.training.escalation.labels import answer_over_http, label_all, read_answers, write_jsonl

    for noisy in ("httpx", "httpx2"):  # the openai client's transports log one INFO line per request
        logging.getLogger(noisy).setLevel(logging.WARNING)
    items = [it for suite, limit in args.suites.items() for it in load_items(suite, split=args.split, limit=limit)]
    if args.dump_items:
        args.dump_items.parent.mkdir(parents=True, exist_ok=True)
        args.dump_items.write_text("".join(it.model_dump_json() + "\n" for it in items))
        print(f"wrote {len(items)} items to {args.dump_items}")
        return 0
    if args.out is None:
        raise SystemExit("--out is required unless --dump-items is given")
    if args.answers:
        by_key = read_answers(args.answers)
        answers = [by_key.get((it.suite, it.id)) for it in items]
    elif args.model_path:
        from tandem.training.escalation.local_answers import answer_in_process
        answers = asyncio.run(answer_in_process(args.model_path, items, DEFAULT_MAX_TOKENS))
    else:
        answers = asyncio.run(answer_over_http(args.base_url, args.model, items, DEFAULT_MAX_TOKENS,
                                               args.concurrency))
    rows = asyncio.run(label_all(items, answers, args.split))
    write_jsonl(args.out, rows)
    fails = sum(r.fails for r in rows)
    print(f"labelled {len(rows)} of {len(items)} items: {fails} fail on the local route -> {args.out}")
    return 0


def _answer(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from tandem.eval.datasets import EvalItem
    from tandem.training.escalation.local_answers import answer_in_process

    items = [EvalItem.model_validate_json(line) for line in args.items.read_text().splitlines() if line.strip()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as fh:
        def write(item: EvalItem, answer) -> None:
            fh.write(json.dumps({"suite": item.suite, "id": item.id, "answer": answer.model_dump()}) + "\n")
            fh.flush()
        asyncio.run(answer_in_process(args.model_path, items, DEFAULT_MAX_TOKENS, args.slots, args.threads, write))
    print(f"answered {len(items)} items -> {args.out}")
    return 0


def _rescore(args: argparse.Namespace) -> int:
    import asyncio
    from collections import Counter

    from tandem.training.escalation.labels import read_labels, rescore, write_jsonl

    before = read_labels(args.labels)
    try:
        after = asyncio.run(rescore(before))
    except ValueError as exc:
        raise SystemExit(f"tandem escalation rescore: {exc}") from None
    write_jsonl(args.out, after)
    flips = Counter((a.suite, b.fails, a.fails) for b, a in zip(before, after) if a.fails != b.fails)
    print(f"rescored {len(after)} labels: fails {sum(b.fails for b in before)} -> {sum(a.fails for a in after)} -> {args.out}")
    for (suite, was, now), n in sorted(flips.items()):
        print(f"  {suite}: {n} label(s) {'fail' if was else 'pass'} -> {'fail' if now else 'pass'}")
    return 0
