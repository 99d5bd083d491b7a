import json

import pytest

from tandem.eval import make_splits, sources
from tandem.eval.splits import SPLIT_DIR, SplitError, bfcl_category_roles, split_ids, split_of


@pytest.mark.parametrize("dataset", sources.DATASETS)
def test_committed_split_file_matches_policy(dataset):
    committed = json.loads((SPLIT_DIR / f"{dataset}.json").read_text())
    assert committed == make_splits.assign(dataset)


def test_humaneval_and_math500_are_test_only():
    assert split_ids("humaneval", "train") == split_ids("humaneval", "dev") == set()
    assert len(split_ids("humaneval", "test")) == 164
    math500 = set(sources.math500_ids())
    assert len(math500) == 500 and math500 <= split_ids("math", "test")
    assert {split_of("math", i) for i in math500} == {"test"}


@pytest.mark.parametrize("dataset", ["gsm8k", "mbpp", "mmlu", "arc_easy"])
def test_hash_rule_is_about_60_10_30(dataset):
    sizes = {s: len(split_ids(dataset, s)) for s in ("train", "dev", "test")}
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.6) < 0.05
    assert abs(sizes["dev"] / total - 0.1) < 0.04
    assert abs(sizes["test"] / total - 0.3) < 0.05
    assert not split_ids(dataset, "train") & split_ids(dataset, "test")


def test_bfcl_test_holds_out_simple_multiple_parallel_by_id_and_whole_live_categories():
    roles = bfcl_category_roles()
    assert {roles[c] for c in ("simple_python", "multiple", "parallel")} == {"train"}
    assert roles["live_simple"] == "test"
    test_ids = split_ids("bfcl", "test")
    for prefix in ("simple_python_", "multiple_", "parallel_"):
        assert any(i.startswith(prefix) for i in test_ids)
    live = [r["id"] for r in sources.raw_items("bfcl") if r["category"] == "live_simple"]
    assert {split_of("bfcl", i) for i in live} == {"test"}


def test_unknown_ids_and_datasets_are_errors():
    with pytest.raises(SplitError):
        split_of("gsm8k", "no-such-id")
    with pytest.raises(SplitError):
        split_ids("alpaca", "train")
    with pytest.raises(SplitError):
        split_ids("gsm8k", "validation")
