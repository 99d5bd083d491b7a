"""Whether a modifier is served, by a gate fixed in its recipe before any result is seen, and the
intervals reported beside every score.

A modifier is servable only if all of these hold (`servable_verdict`):

1. its held-out loss falls by at least `min_loss_drop` of the base's, with a paired bootstrap
   interval (over rows) entirely below zero;
2. its own domain's task improves: an exact one-sided McNemar test on the items where base and
   modifier disagree gives p < `alpha`;
3. no other measured slice (the other domains' tasks, BFCL irrelevance) falls: the one-sided
   McNemar p of a fall is >= `alpha` on each.

Scores are per-item 0/1 on the same items for base and modifier, so they are compared pair-wise
(McNemar counts only discordant items), with a paired bootstrap interval for the difference.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist


def threshold_for_recall(fit_scores, recall: float) -> float:
    """The largest t at which at least `recall` of `fit_scores` are >= t (a tool-fit check's threshold on dev)."""
    ordered = sorted(float(x) for x in fit_scores)
    return ordered[len(ordered) - math.ceil(recall * len(ordered))]


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


def mcnemar(base: list[float], modifier: list[float]) -> dict[str, float]:
    """Exact McNemar on 0/1 scores: `wins` (modifier right, base wrong), `losses` (the reverse) and the
    one-sided p-values of a gain (`p_gain`) and of a fall (`p_fall`) under no difference."""
    from scipy.stats import binomtest

    wins = sum(m > b for b, m in zip(base, modifier, strict=True))
    losses = sum(b > m for b, m in zip(base, modifier, strict=True))
    if wins + losses == 0:
        return {"wins": 0, "losses": 0, "p_gain": 1.0, "p_fall": 1.0}
    return {"wins": wins, "losses": losses,
            "p_gain": binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue,
            "p_fall": binomtest(losses, wins + losses, 0.5, alternative="greater").pvalue}


def paired_difference(base: list[float], modifier: list[float], confidence: float = 0.95,
                      resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of modifier - base over the same items, with a percentile bootstrap interval and the
    exact McNemar counts and one-sided p-values."""
    if len(base) != len(modifier) or not base:
        raise ValueError("paired scores need the same, non-zero number of items for base and modifier")
    diffs = [m - b for b, m in zip(base, modifier, strict=True)]
    return {**_paired_bootstrap(diffs, [1] * len(diffs), confidence, resamples, seed), "n": len(diffs),
            **mcnemar(base, modifier)}


def paired_loss_difference(base_nll: list[float], modifier_nll: list[float], tokens: list[int],
                           confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Per-token loss of modifier - base over the same rows, with a bootstrap interval that
    resamples rows (a row's tokens are not independent of each other)."""
    if not (len(base_nll) == len(modifier_nll) == len(tokens)) or not tokens:
        raise ValueError("paired losses need the same, non-zero number of rows for base and modifier")
    diffs = [m - b for b, m in zip(base_nll, modifier_nll, strict=True)]
    return {**_paired_bootstrap(diffs, tokens, confidence, resamples, seed), "rows": len(diffs)}


def score_summary(scores: list[float], confidence: float = 0.95) -> dict[str, float]:
    low, high = wilson_interval(round(sum(scores)), len(scores), confidence)
    return {"score": sum(scores) / len(scores) if scores else 0.0, "low": low, "high": high, "n": len(scores)}


def servable_verdict(heldout: dict[str, dict[str, float]], task: dict[str, dict] | None,
                     min_loss_drop: float = 0.01, alpha: float = 0.05,
                     elsewhere: dict[str, dict[str, float]] | None = None) -> tuple[bool, str]:
    """(servable, why) by the three rules of the module docstring. `heldout` = {"base": {"loss"},
    "modifier": {"loss"}, "difference": paired loss interval}; `task` = {"base": summary, "modifier":
    summary, "difference": `paired_difference`} on the domain's own slice, or None when not measured;
    `elsewhere` = {slice name: `paired_difference`} on the other slices."""
    base_loss, mod_loss = heldout["base"]["loss"], heldout["modifier"]["loss"]
    failed = []  # every rule that fails is named, not only the first
    if not mod_loss < base_loss * (1 - min_loss_drop):
        failed.append(f"held-out loss did not drop by {min_loss_drop:.0%} ({base_loss:.4f} -> {mod_loss:.4f})")
    else:
        difference = heldout.get("difference")
        if difference is not None and not difference["high"] < 0:
            failed.append(f"held-out loss drop is within noise (modifier - base {difference['mean']:+.4f}, "
                          f"interval {difference['low']:+.4f} to {difference['high']:+.4f})")
    scores = ""
    if task is None:
        failed.append("task metric not measured; a modifier is served only after it is")
    else:
        paired = task["difference"]
        scores = (f"{task['base']['score']:.3f} -> {task['modifier']['score']:.3f}, "
                  f"{paired['wins']} wins / {paired['losses']} losses, one-sided McNemar p={paired['p_gain']:.3g}")
        if not paired["p_gain"] < alpha:
            failed.append(f"task metric did not improve at p < {alpha:g} ({scores})")
    falls = [f"{name} ({d['wins']} wins / {d['losses']} losses, p={d['p_fall']:.3g})"
             for name, d in (elsewhere or {}).items() if d["p_fall"] < alpha]
    if falls:
        failed.append(f"another slice fell at p < {alpha:g}: {', '.join(falls)}")
    if failed:
        return False, "; ".join(failed)
    return True, f"held-out loss {base_loss:.4f} -> {mod_loss:.4f}; task metric {scores}"
