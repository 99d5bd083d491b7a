"""ARC-Easy accuracy by log-likelihood of the options: the task metric of every stage.

Items come from the evaluation harness (`tandem.eval.datasets.load_items`) and its fixed splits:
`test` for accuracy and ECE, `dev` for the confidence-temperature fit, never mixed.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from tandem.common.answer_confidence import MultipleChoiceItem, Scorer, choice_logits, pad_logits
from tandem.eval.datasets import LETTERS, load_items


def arc_easy_items(split: str, limit: int) -> list[MultipleChoiceItem]:
    items = []
    for item in load_items("arc_easy", split=split, limit=limit):
        question = item.messages[0]["content"].split("\n\nA. ")[0]
        items.append(MultipleChoiceItem(question=question, options=item.meta["options"],
                                        gold=LETTERS.index(item.gold)))
    return items


def score_items(scorer: Scorer, tokenizer, items: list[MultipleChoiceItem],
                desc: str = "ARC-Easy") -> tuple[np.ndarray, np.ndarray]:
    """(option logits padded to (N, max options), gold indices)."""
    rows = [choice_logits(scorer, tokenizer, item) for item in tqdm(items, desc=desc, leave=False)]
    return pad_logits(rows), np.array([item.gold for item in items])


def accuracy(logits: np.ndarray, gold: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == gold).mean())
