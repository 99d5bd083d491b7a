"""APGR, CPT and threshold picking on cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.training.escalation.curves import escalation_curve, pick_index


def test_perfect_ordering_recovers_the_gap_as_fast_as_possible():
    weak = np.array([0, 0, 1, 1.0])
    strong = np.ones(4)
    curve = escalation_curve(np.array([0.9, 0.8, 0.2, 0.1]), weak, strong)
    assert curve.weak_quality == 0.5 and curve.strong_quality == 1.0
    assert curve.pgr == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert curve.cpt == {"50%": 0.25, "80%": 0.5, "95%": 0.5}
    assert curve.apgr == pytest.approx(np.trapezoid([0, 0.5, 1, 1, 1], [0, 0.25, 0.5, 0.75, 1]))


def test_worst_ordering_escalates_everything_last():
    curve = escalation_curve(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1.0]), np.ones(4))
    assert curve.pgr == [0.0, 0.0, 0.0, 0.5, 1.0]
    assert curve.cpt["95%"] == 1.0


def test_random_scores_give_apgr_near_one_half():
    rng = np.random.default_rng(0)
    weak = (rng.random(4000) < 0.4).astype(float)
    curve = escalation_curve(rng.random(4000), weak, np.ones(4000))
    assert curve.apgr == pytest.approx(0.5, abs=0.03)


def test_threshold_for_a_quality_target_or_a_rate_cap():
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    curve = escalation_curve(scores, np.array([0, 0, 1, 1.0]), np.ones(4))
    k = pick_index(curve, ("quality", 0.8))
    assert k == 2 and curve.thresholds[k] == 0.8  # escalate p_fail >= 0.8: the two failures
    assert (scores >= curve.thresholds[k]).sum() == 2
    assert pick_index(curve, ("max_rate", 0.3)) == 1
    assert curve.thresholds[pick_index(curve, ("max_rate", 0.0))] > 1.0  # escalate nothing
