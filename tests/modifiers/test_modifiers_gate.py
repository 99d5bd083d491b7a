"""The servable gate and the intervals reported with every score."""

from __future__ import annotations

import pytest

from tandem.training.modifiers.gate import (
    paired_difference,
    paired_loss_difference,
    score_summary,
    servable_verdict,
    wilson_interval,
)


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


def test_a_task_fall_counts_only_beyond_the_noise_of_its_paired_interval():
    drop = {"base": {"loss": 1.2}, "modifier": {"loss": 0.9}}
    base, one_flip = [1.0] + [0.0] * 19, [0.0] * 20  # 1/20 -> 0/20: the build's code slice
    noisy = {"base": score_summary(base), "modifier": score_summary(one_flip),
             "difference": paired_difference(base, one_flip)}
    served, why = servable_verdict(drop, noisy)
    assert served and "a fall within noise" in why
    base, worse = [1.0] * 12 + [0.0] * 8, [0.0] * 20  # 12/20 -> 0/20: a real regression
    clear = {"base": score_summary(base), "modifier": score_summary(worse),
             "difference": paired_difference(base, worse)}
    served, why = servable_verdict(drop, clear)
    assert not served and why.startswith("task metric fell (0.600 -> 0.000; paired -0.600")


def test_a_loss_drop_inside_the_noise_is_not_served():
    """The code modifier of the first build passed on a 0.4670 -> 0.4669 drop; that must not pass."""
    up = {"base": score_summary([0, 1, 0, 0]), "modifier": score_summary([0, 1, 0, 0])}
    tiny = {"base": {"loss": 0.4670}, "modifier": {"loss": 0.4669}}
    served, why = servable_verdict(tiny, up)
    assert not served and "did not drop by 1%" in why
    # a 6% mean drop that comes from one row, the others worse: the paired interval spans zero
    noisy = paired_loss_difference([10.0, 10.0, 10.0, 10.0], [6.0, 10.5, 10.5, 10.5], [10, 10, 10, 10])
    assert noisy["mean"] == pytest.approx(-0.0625) and noisy["low"] < 0 < noisy["high"]
    verdict = servable_verdict({"base": {"loss": 1.0}, "modifier": {"loss": 0.9375}, "difference": noisy}, up)
    assert verdict[0] is False and "within noise" in verdict[1]
    clear = paired_loss_difference([10.0] * 8, [8.0, 8.5, 7.5, 8.0, 8.2, 7.9, 8.1, 8.0], [10] * 8)
    assert clear["high"] < 0
    assert servable_verdict({"base": {"loss": 1.0}, "modifier": {"loss": 0.8}, "difference": clear}, up)[0] is True
    assert servable_verdict({"base": {"loss": 1.0}, "modifier": {"loss": 0.8}, "difference": clear}, up,
                            min_loss_drop=0.25)[0] is False
