"""Write the committed split files from the policy in `tandem.eval.splits`.

Run `python -m tandem.eval.make_splits` after a data package changes; the output is
deterministic, and a test checks the committed files still match it.
"""

from __future__ import annotations

import json
from pathlib import Path

from tandem.eval import sources
from tandem.eval.splits import BFCL_TEST_CATEGORIES, BFCL_TRAIN_CATEGORIES, SPLIT_DIR, SPLITS, hash_split

POLICY = {
    "humaneval": "every item is test",
    "math": "MATH-500 items are test; others sha256(f'math:{id}') mod 100: train <60, dev <70, test",
    "bfcl": "test categories: every id test; train categories: sha256(f'bfcl:{id}') mod 100: "
    "train <60, dev <70, test",
}
DEFAULT_POLICY = "sha256(f'{dataset}:{id}') mod 100: train <60, dev <70, test"


def assign(dataset: str) -> dict:
    """The split file's content for `dataset`."""
    forced_test: set[str] = set()
    if dataset == "math":
        forced_test = set(sources.math500_ids())
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for row in sources.raw_items(dataset):
        item_id = row["id"]
        if dataset == "humaneval" or item_id in forced_test or row.get("category") in BFCL_TEST_CATEGORIES:
            splits["test"].append(item_id)
        else:
            splits[hash_split(dataset, item_id)].append(item_id)
    content: dict = {
        "dataset": dataset,
        "policy": POLICY.get(dataset, DEFAULT_POLICY),
        "counts": {s: len(ids) for s, ids in splits.items()},
    }
    if dataset == "bfcl":
        content["categories"] = {
            **{c: "train" for c in BFCL_TRAIN_CATEGORIES},
            **{c: "test" for c in BFCL_TEST_CATEGORIES},
        }
    return {**content, **splits}


def write_all(out_dir: Path = SPLIT_DIR) -> dict[str, dict[str, int]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for dataset in sources.DATASETS:
        content = assign(dataset)
        (out_dir / f"{dataset}.json").write_text(json.dumps(content, indent=0) + "\n")
        counts[dataset] = content["counts"]
    return counts


if __name__ == "__main__":
    for name, count in write_all().items():
        print(f"{name:14s} {count}")
