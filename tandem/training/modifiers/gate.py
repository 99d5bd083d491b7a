"""Whether a modifier is served: it must lower its domain's held-out loss by a margin, with a paired
interval that excludes no change, and must not score lower than the base on its domain's task
slice. Also the intervals reported beside every score.

Scores are per-item 0/1 on the same items for base and modifier, so the difference gets a paired
bootstrap interval (resampling items), which is tighter and more honest than two separate ones.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _paired_bootstrap(diffs: list[float], weights: list[float], confidence: float, resamples: int,
                      seed: int) -> dict[str, float]:
    """sum(diffs) / sum(weights) with a percentile bootstrap interval over resampled pairs."""
    n = len(diffs)
    rng = random.Random(seed)
    means = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        means.append(sum(diffs[i] for i in picks) / max(sum(weights[i] for i in picks), 1))
    means.sort()
    tail = (1 - confidence) / 2
    return {"mean": sum(diffs) / max(sum(weights), 1), "low": means[int(tail * (resamples - 1))],
            "high": means[int((1 - tail) * (resamples - 1))]}


def paired_difference(base: list[float], modifier: list[float], confidence: float = 0.95,
                      resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of modifier - base over the same items, with a percentile bootstrap interval."""
    if len(base) != len(modifier) or not base:
        raise ValueError("paired scores need the same, non-zero number of items for base and modifier")
    diffs = [m - b for b, m in zip(base, modifier, strict=True)]
    return {**_paired_bootstrap(diffs, [1] * len(diffs), confidence, resamples, seed), "n": len(diffs)}


def paired_loss_difference(base_nll: list[float], modifier_nll: list[float], tokens: list[int],
                           confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Per-token loss of modifier - base over the same rows, with a bootstrap interval that
    resamples rows (a row's tokens are not independent of each other)."""
    if not (len(base_nll) == len(modifier_nll) == len(tokens)) or not tokens:
        raise ValueError("paired losses need the same, non-zero number of rows for base and modifier")
    diffs = [m - b for b, m in zip(base_nll, modifier_nll, strict=True)]
    return {**_paired_bootstrap(diffs, tokens, confidence, resamples, seed), "rows": len(diffs)}


def score_summary(scores: list[float], confidence: float = 0.95) -> dict[str, float]:
    low, high = wilson_interval(int(round(sum(scores))), len(scores), confidence)
    return {"score": sum(scores) / len(scores) if scores else 0.0, "low": low, "high": high, "n": len(scores)}


def servable_verdict(heldout: dict[str, dict[str, float]], task: dict[str, dict] | None,
                     min_loss_drop: float = 0.01) -> tuple[bool, str]:
    """(servable, why). `heldout` = {"base": {"loss"}, "modifier": {"loss"}, "difference": {"high"}}
    (the paired interval, when measured); `task` = {"base": {"score"}, "modifier": {"score"}} or None
    when the task metric was not measured, plus "difference" (the paired interval of modifier - base
    on the same items) when measured. The loss must fall by at least `min_loss_drop` of the base's,
    and the interval's upper end must be below zero: a drop inside the noise is no drop. Symmetrically
    the task score must not fall beyond the noise: with a paired interval, only an interval entirely
    below zero is a fall (a 1/20 -> 0/20 flip is not); without one, any lower score is."""
    base_loss, mod_loss = heldout["base"]["loss"], heldout["modifier"]["loss"]
    if not mod_loss < base_loss * (1 - min_loss_drop):
        return False, (f"held-out loss did not drop by {min_loss_drop:.0%} "
                       f"({base_loss:.4f} -> {mod_loss:.4f})")
    difference = heldout.get("difference")
    if difference is not None and not difference["high"] < 0:
        return False, (f"held-out loss drop is within noise (modifier - base {difference['mean']:+.4f}, "
                       f"interval {difference['low']:+.4f} to {difference['high']:+.4f})")
    if task is None:
        return False, "task metric not measured; a modifier is served only after it is"
    base_score, mod_score = task["base"]["score"], task["modifier"]["score"]
    paired = task.get("difference")
    scores = f"{base_score:.3f} -> {mod_score:.3f}"
    if paired is None:
        if mod_score < base_score:
            return False, f"task metric fell ({scores})"
        return True, f"held-out loss {base_loss:.4f} -> {mod_loss:.4f}; task metric {scores}"
    interval = f"interval {paired['low']:+.3f} to {paired['high']:+.3f}"
    if paired["high"] < 0:
        return False, f"task metric fell ({scores}; paired {paired['mean']:+.3f}, {interval})"
    noise = f" (paired {interval}: a fall within noise)" if mod_score < base_score else ""
    return True, f"held-out loss {base_loss:.4f} -> {mod_loss:.4f}; task metric {scores}{noise}"
