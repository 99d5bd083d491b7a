"""The hand-labelled real-prompt sets: labelled as documented, stratified, and never trained on.

The near-duplicate check here is written independently of `tandem.training.routing.leakage` (an exact
Jaccard over an inverted index of word 3-grams, no MinHash), so a bug there cannot hide a leak.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tandem.common.recipe_config import load_config
from tandem.training.routing.config import DATA_DIR, RouterRecipeConfig
from tandem.training.routing.dataset import routing_data
from tandem.training.routing.leakage import HeldOutIndex

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "routing" / "router.yaml"
DOMAINS = {"code", "reasoning", "automation", "general"}
NEAR = 0.5  # word-3-gram Jaccard at which two prompts count as the same prompt


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA_DIR / f"real_prompts_{name}.jsonl").read_text().splitlines()]


def grams(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i:i + 3]) for i in range(len(words) - 2)} or {" ".join(words)}


def near_duplicates(queries: list[str], corpus: list[str]) -> list[tuple[str, str, float]]:
    """(query, corpus text, Jaccard) for every pair at or above NEAR, found exactly."""
    index: dict[str, list[int]] = defaultdict(list)
    corpus_grams = [grams(t) for t in corpus]
    for i, g in enumerate(corpus_grams):
        for gram in g:
            index[gram].append(i)
    found = []
    for query in queries:
        q = grams(query)
        shared = Counter(i for gram in q for i in index.get(gram, ()))
        for i, n in shared.items():
            score = n / len(q | corpus_grams[i])
            if score >= NEAR:
                found.append((query[:80], corpus[i][:80], round(score, 3)))
    return found


@pytest.mark.parametrize("name", ["test", "dev"])
def test_rows_carry_both_passes_and_a_resolution(name):
    rows = load(name)
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert {row["label"], row["label_pass1"], row["label_pass2"]} <= DOMAINS, row["id"]
        assert row["source"] in ("sharegpt", "ifbench") and row["source_id"] and row["prompt"].strip()
        if row["label_pass1"] != row["label_pass2"]:
            assert "resolved" in row["note"] and row["label"] in (row["label_pass1"], row["label_pass2"]), row["id"]
        else:
            assert row["label"] == row["label_pass1"], row["id"]


def test_sets_are_the_documented_size_and_stratified():
    test, dev = load("test"), load("dev")
    assert len(test) >= 400 and len(dev) >= 150
    assert min(Counter(r["label"] for r in test)[d] for d in DOMAINS) >= 60
    assert min(Counter(r["label"] for r in dev)[d] for d in DOMAINS) >= 30


def test_test_and_dev_share_no_prompt():
    test, dev = load("test"), load("dev")
    assert not {(r["source"], r["source_id"]) for r in test} & {(r["source"], r["source_id"]) for r in dev}
    assert near_duplicates([r["prompt"] for r in test], [r["prompt"] for r in dev]) == []


def test_held_out_index_finds_edited_copies_only():
    prompt = ("I want you to act as a Linux terminal. I will type commands and you will reply with what the "
              "terminal should show. My first command is pwd.")
    index = HeldOutIndex({"t1": prompt, "t2": "What is the capital of France?"})
    assert index.match(prompt.replace("Linux", "linux").replace("pwd", "ls -la")) == "t1"
    assert index.match("what is the capital of france") == "t2"
    assert index.match("Write a Python function that reverses a string.") is None
    assert index.match("I want you to act as a travel guide. I will tell you my location.") is None


@pytest.mark.slow
def test_no_router_training_row_near_duplicates_a_test_prompt():
    """Every row the shipped recipe trains, selects or calibrates on (all splits of every source,
    the templates and the real dev rows) is checked against every real test prompt."""
    config = load_config(RouterRecipeConfig, RECIPE)
    everything, dropped = routing_data(config)
    used = [ex.text for ex in everything if ex.dataset != "real_test" and ex.origin != "handwritten"]
    test = [r["prompt"] for r in load("test")]
    assert len(used) > 10_000 and dropped > 0, "ShareGPT holds copies of test prompts: the recipe must drop them"
    assert near_duplicates(test, used) == []
    normalized = {re.sub(r"\W+", " ", t.lower()).strip() for t in used}
    assert not [t for t in test if re.sub(r"\W+", " ", t.lower()).strip() in normalized]


# The hand-labelled TRAINING set (real_prompts_train.jsonl): one reading pass, never evaluated on.

def test_train_set_is_labelled_and_documented_size():
    rows = load("train")
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["label"] in DOMAINS and row["prompt"].strip(), row["id"]
        assert row["source"] in ("sharegpt", "ifbench", "public_as_chat") and row["source_id"], row["id"]
        assert row.get("earlier_reader_label", row["label"]) in DOMAINS, row["id"]
        if row["source"] == "public_as_chat":
            # Round 3: a public TRAIN-split item written as a chat request by the labeller; not a real
            # first turn, so it names its item and says so.
            assert row["candidate_pool"].startswith("public_as_chat_") and row["draw_round"] == 3, row["id"]
            assert ":" in row["source_id"] and "written as a chat request" in row["note"], row["id"]
    per_domain = Counter(r["label"] for r in rows)
    # The sizes docs/ROUTER.md reports (1,814 rows: general 1,012, code 409, reasoning 198, automation 195;
    # 102 of them public items written as chat).
    assert len(rows) >= 1800 and per_domain["code"] >= 400 and per_domain["automation"] >= 190
    assert per_domain["reasoning"] >= 190
    assert sum(r["source"] == "public_as_chat" for r in rows) <= 110


def test_public_items_written_as_chat_come_from_train_splits():
    """A public item written as chat must come from the split the router trains on, so that no
    harness dev/test item reaches training through its rewrite."""
    from tandem.training.routing.sources import SOURCES
    rows = [r for r in load("train") if r["source"] == "public_as_chat"]
    by_source: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        name, item = row["source_id"].split(":", 1)
        by_source[name].add(item)
    for name, items in by_source.items():
        splits = {ex.item_id: ex.split for ex in SOURCES[name]("reasoning") if ex.item_id in items}
        assert set(splits) == items, name
        assert set(splits.values()) == {"train"}, name


def test_train_set_shares_no_conversation_and_no_near_duplicate_with_test_or_dev():
    train = load("train")
    held = load("test") + load("dev")
    held_conversations = {r["source_id"].rsplit("_", 1)[0] for r in held if r["source"] == "sharegpt"}
    held_ifbench = {r["source_id"] for r in held if r["source"] == "ifbench"}
    assert not [r["id"] for r in train if r["source"] == "sharegpt"
                and r["source_id"].rsplit("_", 1)[0] in held_conversations]
    assert not [r["id"] for r in train if r["source"] == "ifbench" and r["source_id"] in held_ifbench]
    assert near_duplicates([r["prompt"] for r in train], [r["prompt"] for r in held]) == []
    handwritten = [json.loads(line)["prompt"] for line in (DATA_DIR / "handwritten.jsonl").read_text().splitlines()
                   if line.strip()]
    assert near_duplicates([r["prompt"] for r in train], handwritten) == []


def test_recipe_trains_on_the_train_set_and_its_hand_labels_replace_weak_labels(tmp_path, monkeypatch):
    """routing_data: a labelled turn's weak-labelled copy leaves every split, and a train row that
    near-duplicates a held-out prompt is dropped (the file is guarded again, not trusted)."""
    from tandem.training.routing import dataset
    from tandem.training.routing.examples import RoutingExample

    test_prompt = load("test")[0]["prompt"]
    weak = RoutingExample(dataset="sharegpt", item_id="w1", text="How do I list all pods in every namespace?",
                          domain="general", split="test")
    other = RoutingExample(dataset="sharegpt", item_id="w2", text="Write a haiku about autumn leaves.",
                           domain="general", split="train")
    monkeypatch.setattr(dataset, "build_examples", lambda config: [weak, other])
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(row) + "\n" for row in [
        {"id": "train-a", "source": "sharegpt", "source_id": "x_0", "prompt": weak.text, "label": "automation"},
        {"id": "train-b", "source": "sharegpt", "source_id": "y_0", "prompt": test_prompt + " Thanks!",
         "label": "general"}]))
    config = load_config(RouterRecipeConfig, RECIPE).model_copy(deep=True)
    config.real_prompts.train = train_file
    everything, dropped = dataset.routing_data(config)
    by_text = defaultdict(list)
    for ex in everything:
        by_text[ex.text].append(ex)
    assert [(ex.dataset, ex.domain, ex.split) for ex in by_text[weak.text]] == [("real_train", "automation", "train")]
    assert [ex.dataset for ex in by_text[other.text]] == ["sharegpt"]
    assert not [ex for ex in everything if ex.dataset == "real_train" and ex.item_id == "train-b"]
    assert dropped == 1


def test_shipped_recipe_names_the_train_set():
    config = load_config(RouterRecipeConfig, RECIPE)
    assert config.real_prompts.train == DATA_DIR / "real_prompts_train.jsonl"
