"""How sure the model is of its answer, as a probability that matches its accuracy.

Two kinds of answer, one mechanism (temperature scaling from `tandem.common.calibration`):

- multiple choice: the log-likelihood of each option after the question is a logit; softmax
  over options gives the answer's confidence (`choice_logits`, `fit_choice_temperature`);
- free text: features of the generated tokens' log-probabilities (`sequence_features`); their
  mean log-probability is the logit `fit_binary_temperature` calibrates against correctness.

Anything with `continuation_logprobs(context_ids, [continuation_ids, ...])` can score: the
transformers and llama.cpp scorers in `tandem.compression.scoring` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from tandem.common.calibration import apply_temperature, expected_calibration_error, fit_temperature

PAD_LOGIT = -1e9  # fills the logit rows of items with fewer options; softmax gives them ~0


class Scorer(Protocol):
    def continuation_logprobs(self, context: list[int], continuations: list[list[int]]) -> list[np.ndarray]:
        ...


class MultipleChoiceItem(BaseModel):
    question: str
    options: list[str]
    gold: int


class CalibrationResult(BaseModel):
    temperature: float
    ece_before: float
    ece_after: float
    accuracy: float
    mean_confidence_before: float
    mean_confidence_after: float
    n_dev: int
    n_test: int


def choice_logits(scorer: Scorer, tokenizer, item: MultipleChoiceItem) -> np.ndarray:
    """Summed log-likelihood of each option after "Question: ...\\nAnswer:"."""
    context = tokenizer(f"Question: {item.question}\nAnswer:", add_special_tokens=False)["input_ids"]
    options = [tokenizer(f" {opt}", add_special_tokens=False)["input_ids"] for opt in item.options]
    return np.array([lp.sum() for lp in scorer.continuation_logprobs(context, options)])


def pad_logits(rows: Sequence[np.ndarray]) -> np.ndarray:
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), PAD_LOGIT)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def confidence_and_correct(logits: np.ndarray, gold: np.ndarray, temperature: float = 1.0):
    probs = apply_temperature(logits, temperature)
    return probs.max(axis=1), (probs.argmax(axis=1) == gold).astype(float)


def fit_choice_temperature(dev_logits: np.ndarray, dev_gold: np.ndarray, test_logits: np.ndarray,
                           test_gold: np.ndarray, n_bins: int = 10) -> CalibrationResult:
    """Fit T on the dev items; report ECE on the (disjoint) test items before and after."""
    temperature = fit_temperature(dev_logits, dev_gold)
    conf_before, correct = confidence_and_correct(test_logits, test_gold)
    conf_after, _ = confidence_and_correct(test_logits, test_gold, temperature)
    return CalibrationResult(
        temperature=temperature,
        ece_before=expected_calibration_error(conf_before, correct, n_bins),
        ece_after=expected_calibration_error(conf_after, correct, n_bins),
        accuracy=float(correct.mean()), mean_confidence_before=float(conf_before.mean()),
        mean_confidence_after=float(conf_after.mean()), n_dev=len(dev_gold), n_test=len(test_gold))


def sequence_features(token_logprobs: Sequence[float]) -> dict[str, float]:
    """Confidence features of a generated answer from its tokens' log-probabilities."""
    lp = np.asarray(token_logprobs, dtype=np.float64)
    if lp.size == 0:
        raise ValueError("an answer with no tokens has no confidence features")
    return {"mean_logprob": float(lp.mean()), "min_logprob": float(lp.min()),
            "sum_logprob": float(lp.sum()), "n_tokens": float(lp.size),
            "frac_below_minus_2": float((lp < -2.0).mean())}
