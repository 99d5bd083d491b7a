import pytest

from tandem.eval.datasets import SUITES, load_items
from tandem.eval.splits import split_of

FULL_SIZES = {
    "humaneval": 164,
    "mbpp": 500,
    "gsm8k": 1319,
    "math500": 500,
    "math": 5000,
    "arc_easy": 2376,
    "arc_challenge": 1172,
    "mmlu": 14042,
}


@pytest.mark.parametrize("suite", sorted(FULL_SIZES))
def test_suite_sizes_match_the_published_test_sets(suite):
    items = load_items(suite)
    assert len(items) == FULL_SIZES[suite]
    assert len({it.id for it in items}) == len(items)


def test_bfcl_items_carry_tools_category_and_possible_answers():
    items = load_items("bfcl")
    cats = {it.meta["category"] for it in items}
    assert {"simple_python", "multiple", "parallel", "live_simple"} <= cats
    simple = next(it for it in items if it.id == "simple_python_1")
    assert simple.tools[0]["function"]["name"] == "math_factorial"
    assert simple.gold == [{"math.factorial": {"number": [5]}}]


def test_split_filter_and_limit_sample_is_deterministic_and_mixed():
    test_items = load_items("mmlu", split="test")
    assert {split_of("mmlu", it.id) for it in test_items} == {"test"}
    sample = load_items("mmlu", split="test", limit=40)
    assert [it.id for it in sample] == [it.id for it in load_items("mmlu", split="test", limit=40)]
    assert len({it.meta["subject"] for it in sample}) > 10


def test_arc_prompt_lists_every_option_and_gold_is_a_letter():
    for it in load_items("arc_challenge"):
        assert it.gold in "ABCDE"
        assert len(it.meta["options"]) in (3, 4, 5)
        assert all(opt for opt in it.meta["options"])
        assert f"{it.gold}. {it.meta['options']['ABCDE'.index(it.gold)]}" in it.messages[0]["content"]


def test_math_gold_comes_from_the_boxed_solution():
    items = {it.id: it for it in load_items("math500")}
    assert items["precalculus/460"].gold == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert all(it.dataset == "math" and it.gold for it in items.values())


def test_every_suite_is_listed():
    assert set(SUITES) == set(FULL_SIZES) | {"bfcl"}
