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


def _task(base: list[float], modifier: list[float]) -> dict:
    return {"base": score_summary(base), "modifier": score_summary(modifier),
            "difference": paired_difference(base, modifier)}


def test_mcnemar_counts_only_discordant_items_and_is_exact():
    diff = paired_difference([0.0] * 10 + [1.0] * 5, [1.0] * 10 + [1.0] * 4 + [0.0])
    assert (diff["wins"], diff["losses"]) == (10, 1)
    assert diff["p_gain"] == pytest.approx(12 / 2048)  # P(X >= 10), X ~ Bin(11, 1/2)
    assert diff["p_fall"] == pytest.approx(2047 / 2048)
    same = paired_difference([1.0, 0.0], [1.0, 0.0])
    assert (same["wins"], same["losses"], same["p_gain"], same["p_fall"]) == (0, 0, 1.0, 1.0)


def test_servable_needs_a_significant_gain_on_its_own_task():
    drop = {"base": {"loss": 1.2}, "modifier": {"loss": 0.9}}
    rise = {"base": {"loss": 0.9}, "modifier": {"loss": 1.2}}
    clear_gain = _task([0.0] * 200, [1.0] * 8 + [0.0] * 192)  # 8 wins, 0 losses: p = 1/256
    served, why = servable_verdict(drop, clear_gain)
    assert served and "8 wins / 0 losses" in why
    assert servable_verdict(rise, clear_gain)[0] is False
    assert servable_verdict(drop, None)[0] is False
    small_gain = _task([0.0] * 200, [1.0] * 3 + [0.0] * 197)  # 3 wins: p = 1/8, not significant
    served, why = servable_verdict(drop, small_gain)
    assert not served and why.startswith("task metric did not improve at p < 0.05")
    # the old gate's case: 1/20 -> 0/20 was served as "a fall within noise"; no gain is no gain
    assert servable_verdict(drop, _task([1.0] + [0.0] * 19, [0.0] * 20))[0] is False


def test_a_significant_fall_on_another_slice_refuses_the_modifier():
    drop = {"base": {"loss": 1.2}, "modifier": {"loss": 0.9}}
    gain = _task([0.0] * 200, [1.0] * 10 + [0.0] * 190)
    noise = paired_difference([1.0] * 2 + [0.0] * 98, [0.0] * 100)  # 2 losses: p = 0.25
    fall = paired_difference([1.0] * 9 + [0.0] * 91, [0.0] * 100)  # 9 losses: p = 0.002
    assert servable_verdict(drop, gain, elsewhere={"mbpp": noise})[0] is True
    served, why = servable_verdict(drop, gain, elsewhere={"mbpp": noise, "irrelevance": fall})
    assert not served and "irrelevance (0 wins / 9 losses" in why and "mbpp" not in why
    assert servable_verdict(drop, gain, alpha=0.001, elsewhere={"irrelevance": fall})[0] is True


def test_every_failed_rule_is_named_not_only_the_first():
    """Code run 3 missed its own task and fell on irrelevance; the verdict named only the first."""
    drop = {"base": {"loss": 0.55}, "modifier": {"loss": 0.45}}
    small_gain = _task([0.0] * 149, [1.0] * 3 + [0.0] * 146)
    fall = paired_difference([1.0] * 9 + [0.0] * 91, [0.0] * 100)
    served, why = servable_verdict(drop, small_gain, elsewhere={"irrelevance": fall})
    assert not served and "task metric did not improve" in why and "irrelevance (0 wins / 9 losses" in why
    served, why = servable_verdict({"base": {"loss": 0.5}, "modifier": {"loss": 0.6}}, None)
    assert not served and "did not drop" in why and "not measured" in why


def test_a_loss_drop_inside_the_noise_is_not_served():
    """The code modifier of the first build passed on a 0.4670 -> 0.4669 drop; that must not pass."""
    up = _task([0.0] * 50, [1.0] * 10 + [0.0] * 40)
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
