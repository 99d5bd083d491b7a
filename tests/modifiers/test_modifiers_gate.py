"""The servable gate and the intervals reported with every score."""

from __future__ import annotations

import pytest

from tandem.training.modifiers.gate import paired_difference, score_summary, servable_verdict, wilson_interval


def test_wilson_interval_brackets_the_rate_and_narrows_with_n():
    low, high = wilson_interval(5, 20)
    assert low < 0.25 < high
    low_big, high_big = wilson_interval(50, 200)
    assert high_big - low_big < high - low
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(0, 10)[1] > 0.0


def test_paired_difference_is_exact_in_the_mean_and_its_interval_excludes_zero_for_a_clear_win():
    base = [0.0] * 30 + [1.0] * 10
    better = [1.0] * 30 + [1.0] * 10
    diff = paired_difference(base, better)
    assert diff["mean"] == pytest.approx(0.75)
    assert 0 < diff["low"] <= diff["mean"] <= diff["high"]
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 0.0])


def test_servable_needs_lower_heldout_loss_and_no_lower_task_score():
    drop = {"base": {"loss": 1.2}, "modifier": {"loss": 0.9}}
    rise = {"base": {"loss": 0.9}, "modifier": {"loss": 1.2}}
    up = {"base": score_summary([0, 1, 0, 0]), "modifier": score_summary([1, 1, 0, 0])}
    down = {"base": score_summary([1, 1, 0, 0]), "modifier": score_summary([1, 0, 0, 0])}
    assert servable_verdict(drop, up)[0] is True
    assert servable_verdict(drop, down) == (False, "task metric fell (0.500 -> 0.250)")
    assert servable_verdict(rise, up)[0] is False
    assert servable_verdict(drop, None)[0] is False
