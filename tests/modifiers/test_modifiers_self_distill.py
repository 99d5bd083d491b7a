"""Self-distillation keeps only programs that pass the item's tests in the harness's sandbox,
once each, as code-only rows on train ids; a rerun replaces its rows instead of doubling them."""

from __future__ import annotations

import gzip
import json

from tandem.eval.datasets import load_items
from tandem.training.modifiers.self_distill import add_rows, distill_rows, solved_ids, write_items

ITEM = {"id": "t1", "messages": [{"role": "user", "content": "Write add(a, b)."}],
        "gold": {"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], "setup": ""}}
RIGHT = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nIt adds a and b, then multiplies."
RIGHT_AGAIN = "```python\ndef add(a, b):\n    return a + b   \n\n```"
OTHER_RIGHT = "```python\ndef add(a, b):\n    return sum([a, b])\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
HANGS = "```python\ndef add(a, b):\n    while True:\n        pass\n```"


def test_only_distinct_passing_programs_become_code_only_rows():
    rows, stats = distill_rows([ITEM], [[WRONG, RIGHT, HANGS, RIGHT_AGAIN, OTHER_RIGHT]], per_item=4,
                               workers=2, timeout_s=1.0)
    assert [r["id"] for r in rows] == ["mbpp_self/t1/0", "mbpp_self/t1/1"]
    assert [r["messages"][-1]["content"] for r in rows] == [
        "```python\ndef add(a, b):\n    return a + b\n```", "```python\ndef add(a, b):\n    return sum([a, b])\n```"]
    assert all(r["messages"][:-1] == ITEM["messages"] for r in rows)
    assert stats == {"items_with_a_pass": 1, "rows": 2, "programs_run": 4}  # the repeat is never run


def test_scoring_stops_once_an_item_has_enough():
    rows, stats = distill_rows([ITEM], [[RIGHT, HANGS, OTHER_RIGHT]], per_item=1, workers=1, timeout_s=1.0)
    assert len(rows) == 1 and stats["programs_run"] == 1


def test_rows_replace_an_earlier_run_and_keep_the_gold_rows(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(ITEM) + "\n")
    (tmp_path / "rows" / "code").mkdir(parents=True)
    train = tmp_path / "rows" / "code" / "train.jsonl"
    gold = {"id": "mbpp/9", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    train.write_text(json.dumps(gold) + "\n")
    samples = tmp_path / "samples.jsonl.gz"
    with gzip.open(samples, "wt") as fh:
        fh.write(json.dumps({"id": "t1", "replies": [WRONG, RIGHT, OTHER_RIGHT]}) + "\n")
    for _ in range(2):
        stats = add_rows(items, samples, tmp_path / "rows", per_item=4, workers=1, timeout_s=1.0)
    ids = [json.loads(line)["id"] for line in train.read_text().splitlines()]
    assert ids == ["mbpp/9", "mbpp_self/t1/0", "mbpp_self/t1/1"]
    assert stats["gold_rows"] == 1 and stats["rows"] == 2
    assert json.loads((tmp_path / "rows" / "code" / "self_distill.json").read_text())["rows"] == 2


def test_items_are_train_ids_only(tmp_path):
    out = tmp_path / "items.jsonl"
    n = write_items(out)
    ids = {json.loads(line)["id"] for line in out.read_text().splitlines()}
    assert n == len(ids) > 0
    assert ids == {item.id for item in load_items("mbpp", split="train")}
    assert not ids & {item.id for item in load_items("mbpp", split="test")}
    assert not ids & {item.id for item in load_items("mbpp", split="dev")}


def test_a_second_round_keeps_the_first_rounds_rows_of_other_problems(tmp_path):
    second = {**ITEM, "id": "t2"}
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(ITEM) + "\n" + json.dumps(second) + "\n")
    (tmp_path / "rows" / "code").mkdir(parents=True)
    train = tmp_path / "rows" / "code" / "train.jsonl"
    train.write_text("")
    first, again = tmp_path / "first.jsonl.gz", tmp_path / "second.jsonl.gz"
    with gzip.open(first, "wt") as fh:
        fh.write(json.dumps({"id": "t1", "replies": [RIGHT]}) + "\n")
    with gzip.open(again, "wt") as fh:
        fh.write(json.dumps({"id": "t2", "replies": [OTHER_RIGHT, WRONG]}) + "\n")
    add_rows(items, first, tmp_path / "rows", per_item=4, workers=1, timeout_s=1.0)
    assert solved_ids(tmp_path / "rows") == {"t1"}  # round 2 samples only the other problems
    stats = add_rows(items, again, tmp_path / "rows", per_item=4, workers=1, timeout_s=1.0, keep_earlier=True)
    assert (stats["gold_rows"], stats["earlier_self_rows"], stats["rows"]) == (0, 1, 1)  # round 1's row is not gold
    assert [json.loads(line)["id"] for line in train.read_text().splitlines()] == ["mbpp_self/t1/0", "mbpp_self/t2/0"]
    add_rows(items, again, tmp_path / "rows", per_item=4, workers=1, timeout_s=1.0)  # without: only this round's
    assert [json.loads(line)["id"] for line in train.read_text().splitlines()] == ["mbpp_self/t2/0"]


def test_sampling_from_an_adapter_merges_it_into_the_base(tmp_path):
    """A second round samples from the first round's adapter: the same seed gives other replies."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tandem.training.base_model import resolve_base
    from tandem.training.modifiers.self_distill import sample

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_base("embedded").hf_dir, dtype=torch.float32)
    lora = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                                           init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(ITEM) + "\n")
    runs = {}
    for name, adapter in (("base", None), ("adapter", tmp_path / "adapter")):
        stats = sample(items, tmp_path / f"{name}.jsonl.gz", "embedded", k=2, temperature=0.8, top_p=0.95,
                       max_new_tokens=12, batch_prompts=1, seed=0, adapter=adapter)
        assert stats["adapter"] == (str(adapter) if adapter else None)
        with gzip.open(tmp_path / f"{name}.jsonl.gz", "rt") as fh:
            runs[name] = json.loads(fh.readline())["replies"]
    assert len(runs["adapter"]) == 2 and runs["adapter"] != runs["base"]
