"""Cost/quality curves of escalating the hardest k% (RouteLLM's metrics).

Sort held-out items by the escalation score (P(local fails)), hardest first; escalating the
top k replaces their local scores with the strong model's. With W and S the all-local and
all-strong mean scores, the performance gap recovered is PGR(k) = (Q(k) - W) / (S - W).
APGR is the area under PGR over the call fraction (random ordering: 0.5); CPT(x) is the
smallest call fraction whose PGR reaches x.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel


class Curve(BaseModel):
    call_fraction: list[float]
    quality: list[float]
    pgr: list[float]
    thresholds: list[float]  # score cutoff escalating exactly the first k items
    weak_quality: float
    strong_quality: float
    apgr: float
    cpt: dict[str, float | None]


def escalation_curve(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> Curve:
    order = np.argsort(-scores, kind="stable")
    gain = (strong - weak)[order]
    n = len(scores)
    quality = weak.mean() + np.concatenate([[0.0], np.cumsum(gain)]) / n
    w, s = float(weak.mean()), float(strong.mean())
    pgr = (quality - w) / (s - w) if s > w else np.ones_like(quality)
    fractions = np.arange(n + 1) / n
    cutoffs = np.concatenate([[np.inf], scores[order]])
    cpt = {f"{int(x * 100)}%": _first_fraction(fractions, pgr, x) for x in (0.5, 0.8, 0.95)}
    return Curve(call_fraction=fractions.tolist(), quality=quality.tolist(), pgr=pgr.tolist(),
                 thresholds=[float(c) if np.isfinite(c) else 1.01 for c in cutoffs], weak_quality=w,
                 strong_quality=s, apgr=float(np.trapezoid(pgr, fractions)), cpt=cpt)


def _first_fraction(fractions: np.ndarray, pgr: np.ndarray, target: float) -> float | None:
    reached = np.nonzero(pgr >= target - 1e-12)[0]
    return float(fractions[reached[0]]) if len(reached) else None


def pick_index(curve: Curve, target: tuple[str, float]) -> int:
    """The number of items to escalate for a target: quality=F (PGR >= F) or max_rate=F."""
    kind, value = target
    if kind == "quality":
        reached = [k for k, p in enumerate(curve.pgr) if p >= value - 1e-12]
        return reached[0] if reached else len(curve.pgr) - 1
    return int(np.floor(value * (len(curve.pgr) - 1) + 1e-9))
