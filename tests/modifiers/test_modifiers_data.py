"""The modifiers' training data: real rows from the shipped data, never from held-out ids, in the
prompt and answer shapes the harness and the worker use."""

from __future__ import annotations

import json

import pytest

from tandem.eval.bfcl_tools import check_calls
from tandem.eval.datasets import load_items
from tandem.eval.splits import BFCL_TEST_CATEGORIES, split_ids
from tandem.services.engine.chat import parse_tool_calls
from tandem.training.modifiers.data import SOURCE_DATASET, build_rows, trained_on
from tandem.training.modifiers.data.reasoning import gsm8k_solution
from tandem.training.modifiers.tool_prompt import render_messages


def _native_id(row_id: str) -> str:
    return row_id.split("/", 1)[1]


@pytest.mark.parametrize("source", ["mbpp", "mbpp_bash", "gsm8k", "bfcl", "bfcl_no_fit", "replay_arc_easy",
                                    "replay_mbpp"])
def test_training_rows_come_only_from_their_split(source):
    dataset = SOURCE_DATASET[source]
    held_out = split_ids(dataset, "test")
    for split in ("train", "dev"):
        rows = build_rows([source], split, limit_per_source=200)
        assert rows, f"{source} has no {split} rows"
        ids = {part for r in rows for part in _native_id(r.id).split("+")}  # no-fit rows: request+tools ids
        assert ids <= split_ids(dataset, split)
        assert not ids & held_out


def test_math_training_never_sees_math500():
    math500 = {it.id for it in load_items("math500")}
    train = {_native_id(r.id) for r in build_rows(["math"], "train")}
    assert len(train) > 1000 and not train & math500


def test_rows_end_with_the_gold_answer_under_the_harness_prompt():
    (row,) = build_rows(["mbpp"], "train", limit_per_source=1)
    item = next(it for it in load_items("mbpp", split="train") if it.id == _native_id(row.id))
    assert row.messages[:-1] == item.messages
    assert row.messages[-1]["role"] == "assistant" and row.messages[-1]["content"].startswith("```python\n")
    (bash,) = build_rows(["mbpp_bash"], "train", limit_per_source=1)
    assert bash.messages[-1]["content"].startswith("```bash\n")


def test_gsm8k_solution_drops_calculator_notes_and_ends_in_the_asked_form():
    text = gsm8k_solution("She sells 16 - 3 = <<16-3=13>>13 eggs.\nSo 13 * 2 = <<13*2=26>>26.\n#### 1,026")
    assert "<<" not in text
    assert text.endswith("The answer is 1026.")


def test_bfcl_rows_train_on_train_categories_and_their_gold_passes_bfcl_checker():
    items = {it.id: it for it in load_items("bfcl", split="train")}
    rows = build_rows(["bfcl"], "train", limit_per_source=40)
    assert not any(r.id.split("/")[1].rsplit("_", 1)[0] in BFCL_TEST_CATEGORIES for r in rows)
    for row in rows:
        item = items[_native_id(row.id)]
        calls = [{c["function"]["name"]: json.loads(c["function"]["arguments"])} for c in row.messages[-1]["tool_calls"]]
        valid, error = check_calls(item.meta["functions"], calls, item.gold, item.meta["category"])
        assert valid, f"{row.id}: {error}"


def test_rendered_tool_answer_is_what_the_worker_parses_back():
    rows = [r for r in build_rows(["bfcl"], "train", limit_per_source=60) if len(r.messages[-1]["tool_calls"]) > 1]
    row = rows[0]
    plain = render_messages(row.messages, row.tools)
    assert plain[0]["role"] == "system" and row.tools[0]["function"]["name"] in plain[0]["content"]
    assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in plain)
    parsed = parse_tool_calls(plain[-1]["content"])
    gold = row.messages[-1]["tool_calls"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in parsed] == \
        [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in gold]


def test_trained_on_names_datasets_and_splits_for_the_contamination_guard():
    assert trained_on(["bfcl", "mbpp_bash"]) == {"bfcl": ["train", "dev"], "mbpp": ["train", "dev"]}


@pytest.mark.parametrize("split", ["train", "dev"])
def test_no_fit_rows_answer_without_a_call_and_offer_no_gold_function(split):
    from tandem.eval.tool_answers import extract_calls
    from tandem.training.modifiers.data.automation import gold_function_names

    items = {it.id: it for it in load_items("bfcl", split=split)}
    rows = build_rows(["bfcl_no_fit"], split)
    assert len(rows) >= (150 if split == "train" else 20)
    for row in rows:
        source_id, partner_id = _native_id(row.id).split("+")
        # both the request and the offered tools come from this split: no test id, no irrelevance item
        assert source_id in items and partner_id in items
        offered = {t["function"]["name"] for t in row.tools}
        assert offered == {t["function"]["name"] for t in items[partner_id].tools}
        assert not gold_function_names(items[source_id]) & offered
        rendered = render_messages(row.messages, row.tools)
        assert rendered[0]["role"] == "system" and "You can call these functions" in rendered[0]["content"]
        answer = rendered[-1]
        assert answer["role"] == "assistant" and answer["content"]
        assert "tool_calls" not in row.messages[-1]
        assert parse_tool_calls(answer["content"]) is None
        assert extract_calls(answer["content"], None, offered) == []


def test_no_fit_rows_are_a_sensible_share_of_automation_training():
    rows = build_rows(["bfcl", "bfcl_no_fit", "mbpp_bash"], "train")
    share = sum(r.source == "bfcl_no_fit" for r in rows) / len(rows)
    assert 0.15 <= share <= 0.30


@pytest.mark.parametrize("split", ["train", "dev"])
def test_near_no_fit_rows_offer_a_topical_neighbour_that_cannot_serve_the_request(split):
    import numpy as np

    from tandem.eval.tool_answers import extract_calls
    from tandem.training.modifiers.data import automation as auto

    items = {it.id: it for it in load_items("bfcl", split=split)}
    rows = build_rows(["bfcl_no_fit_near"], split)
    easy = {_native_id(r.id).split("+")[0]: _native_id(r.id).split("+")[1] for r in build_rows(["bfcl_no_fit"], split)}
    assert len(rows) >= (400 if split == "train" else 25)
    requests, offered_texts, gold_texts, pairs = [], [], [], []
    for row in rows:
        source_id, partner_id = _native_id(row.id).split("+")
        assert source_id in items and partner_id in items and source_id != partner_id
        source, partner = items[source_id], items[partner_id]
        offered = {t["function"]["name"] for t in row.tools}
        assert offered == {t["function"]["name"] for t in partner.tools}
        gold = auto.gold_function_names(source)
        assert not gold & offered  # the hard guarantee
        rendered = render_messages(row.messages, row.tools)
        assert parse_tool_calls(rendered[-1]["content"]) is None
        assert extract_calls(rendered[-1]["content"], None, offered) == []
        requests.append(auto._request_text(source))
        offered_texts.append([auto._function_text(t) for t in partner.tools])
        gold_texts.append([auto._function_text(t) for t in source.tools if t["function"]["name"] in gold])
        pairs.append((source_id, row))
    # no offered function is a renamed copy of a gold one, nor near the request itself
    request_vecs = auto._embed(requests)
    texts = sorted({t for group in offered_texts + gold_texts for t in group})
    vec = dict(zip(texts, auto._embed(texts)))
    for i in range(len(pairs)):
        offered_vecs = np.stack([vec[t] for t in offered_texts[i]])
        assert float(np.max(offered_vecs @ request_vecs[i])) < auto.NEAR_MAX_FIT_SIM
        if gold_texts[i]:
            gold_vecs = np.stack([vec[t] for t in gold_texts[i]])
            assert float(np.max(offered_vecs @ gold_vecs.T)) < auto.NEAR_MAX_FUNCTION_SIM
    # topical neighbours: the offered tools sit clearly nearer the request than the same request's
    # word-disjoint partner's (bfcl_no_fit) do
    both = [(i, easy[source_id]) for i, (source_id, _) in enumerate(pairs) if source_id in easy]
    near_vecs = auto._embed(["; ".join(auto._function_text(t) for t in pairs[i][1].tools) for i, _ in both])
    far_vecs = auto._embed(["; ".join(auto._function_text(t) for t in items[p].tools) for _, p in both])
    picked = request_vecs[[i for i, _ in both]]
    near, far = (near_vecs * picked).sum(1), (far_vecs * picked).sum(1)
    assert len(near) >= 10 and np.median(near) > np.median(far) + 0.15


def test_near_no_fit_rows_leave_out_requests_like_bfcl_irrelevance_questions():
    from tandem.training.modifiers.data import automation as auto

    irrelevance = auto._irrelevance_questions()
    assert len(irrelevance) == 240  # the whole category, read only to exclude look-alikes
    for row in build_rows(["bfcl_no_fit_near"], "train"):
        request = auto._words(" ".join(m["content"] for m in row.messages if m["role"] == "user"))
        assert not auto._near(request, irrelevance)


def test_run3_automation_recipe_mixes_near_no_fit_rows_at_the_fixed_share():
    from tandem.common.recipe_config import load_config
    from tandem.training.modifiers.config import ModifierConfig

    config = load_config(ModifierConfig, "configs/modifiers/automation.yaml", ["data.train_limit_per_source=null"])
    assert "bfcl_no_fit_near" in config.data.train_sources
    rows = build_rows(config.data.train_sources, "train")
    no_fit = sum(r.source in ("bfcl_no_fit", "bfcl_no_fit_near") for r in rows) / len(rows)
    calls = sum(r.source == "bfcl" for r in rows) / len(rows)
    assert 0.35 <= no_fit <= 0.45 and calls >= 0.25
