"""Combining a config's repeats, relative change, and the tie-set (autotuner.stats.repeats / ranking)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotuner.stats import (
    ConfigEstimate,
    Interval,
    config_interval,
    estimate_config,
    rank,
    relative_change,
)

Z = 1.959963984540054


# ------------------------------------------------------------------------------------------------ one config
def test_one_repeat_uses_the_prior_cv() -> None:
    interval = config_interval([200.0])
    assert interval.estimate == 200.0
    assert interval.half_width == pytest.approx(Z * 0.07 * 200.0)
    assert interval.method.startswith("prior-cv")
    assert config_interval([200.0], prior_cv=0.14).half_width == pytest.approx(2 * interval.half_width)


def test_one_repeat_takes_the_wider_of_prior_and_within_run() -> None:
    narrow = Interval(200.0, 195.0, 206.0, 0.95, 12, "bca")
    assert config_interval([200.0], [narrow]).half_width == pytest.approx(Z * 0.07 * 200.0)
    wide = Interval(200.0, 150.0, 260.0, 0.95, 12, "bca")
    interval = config_interval([200.0], [wide])
    assert interval.low <= 150.0 and interval.high >= 260.0


def test_repeats_without_prior_give_the_textbook_t_interval() -> None:
    interval = config_interval([100.0, 104.0, 96.0], prior_df=0.0)
    assert interval.estimate == 100.0
    assert interval.half_width == pytest.approx(4.302653 * 4.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) s / sqrt(n)


def test_repeats_shrink_their_spread_toward_the_prior() -> None:
    estimate = estimate_config([100.0, 130.0, 85.0], prior_df=4.0)
    spread = float(np.std([100.0, 130.0, 85.0], ddof=1))
    assert 0.07 * estimate.mean < estimate.sd < spread
    assert estimate.df == 6.0


def test_a_second_repeat_does_not_widen_the_interval() -> None:
    # the plain t-interval from 2 values has t = 12.7: a second measurement would triple the width
    one = config_interval([100.0])
    two = config_interval([96.5, 103.5])  # spread about the prior's 7%
    assert two.width < one.width
    assert config_interval([96.5, 103.5], prior_df=0).width > 2 * one.width


def test_identical_repeats_keep_the_within_run_uncertainty() -> None:
    within = [Interval(50.0, 40.0, 60.0, 0.95, 12, "bca")] * 3
    interval = config_interval([50.0, 50.0, 50.0], within, prior_cv=0.0)
    assert interval.width > 0.0


def test_config_interval_coverage_on_normal_repeats() -> None:
    rng = np.random.default_rng(4)
    truth, hits, plain_hits, reps = 100.0, 0, 0, 2000
    for _ in range(reps):
        values = list(truth * (1 + 0.07 * rng.standard_normal(3)))
        hits += config_interval(values).contains(truth)
        plain_hits += config_interval(values, prior_df=0).contains(truth)
    assert 0.94 <= hits / reps <= 0.99  # a correct prior counted as 4 df is slightly conservative (~98%)
    assert 0.93 <= plain_hits / reps <= 0.97


def test_a_machine_noisier_than_the_prior_is_learned_from_the_repeats() -> None:
    # true CV twice the prior: one repeat cannot know (about 68% coverage); from 3 repeats the data pull it up
    rng = np.random.default_rng(6)
    reps = 2000
    hits = {
        n: sum(config_interval(list(100 * (1 + 0.14 * rng.standard_normal(n)))).contains(100) for _ in range(reps))
        for n in (1, 5)
    }
    assert hits[1] / reps < 0.75
    assert 0.85 <= hits[5] / reps <= 0.95


def test_config_interval_rejects_nothing_and_nan() -> None:
    with pytest.raises(ValueError):
        config_interval([])
    with pytest.raises(ValueError):
        config_interval([1.0, math.nan])


# ------------------------------------------------------------------------------------------ relative change
def test_relative_change_of_equal_configs_contains_zero() -> None:
    change = relative_change([100.0, 103.0, 98.0], [101.0, 97.0, 102.0])
    assert change.contains(0.0)
    assert change.method == "log-ratio-t(welch)"


def test_relative_change_detects_a_clear_gain_and_is_asymmetric() -> None:
    change = relative_change([100.0, 101.0, 99.0], [120.0, 121.0, 119.0])
    assert change.estimate == pytest.approx(0.20)
    assert change.low > 0.0
    assert change.high - change.estimate > change.estimate - change.low  # a ratio's interval leans up
    assert relative_change([100.0], [50.0]).low > -1.0


def test_relative_change_coverage() -> None:
    rng = np.random.default_rng(8)
    hits, reps = 0, 2000
    for _ in range(reps):
        a = list(100 * (1 + 0.07 * rng.standard_normal(3)))
        b = list(110 * (1 + 0.07 * rng.standard_normal(2)))
        hits += relative_change(a, b).contains(0.10)
    assert 0.92 <= hits / reps <= 0.99


# ------------------------------------------------------------------------------------------------- tie-set
def estimates(values: dict[str, list[float]]) -> dict[str, ConfigEstimate]:
    return {key: estimate_config(v) for key, v in values.items()}


def test_a_clearly_better_config_is_separated() -> None:
    ranking = rank(estimates({"a": [150, 152, 149], "b": [100, 103], "c": [90]}))
    assert ranking.best == ranking.leader == "a"
    assert ranking.tie_set == ("a",) and ranking.separated


def test_close_configs_form_a_tie_set_and_clearly_worse_ones_do_not() -> None:
    values = {"a": [104.0, 99.0, 103.0], "b": [100.0, 98.0, 104.0], "c": [60.0, 62.0, 61.0]}
    ranking = rank(estimates(values))
    assert ranking.leader == "a"
    assert set(ranking.tie_set) == {"a", "b"} and not ranking.separated
    assert ranking.tie_set[0] == "a"  # no prefer, no secondary: the better mean first
    assert ranking.p_values["c"] < 0.001 < ranking.p_values["b"]


def test_the_baseline_wins_a_tie_but_not_a_separation() -> None:
    tied = estimates({"base": [100.0, 97.0], "new": [103.0, 101.0]})
    ranking = rank(tied, prefer="base")
    assert ranking.leader == "new" and ranking.best == "base"
    separated = estimates({"base": [100.0, 97.0], "new": [150.0, 151.0]})
    assert rank(separated, prefer="base").best == "new"


def test_lower_secondary_latency_breaks_a_tie() -> None:
    tied = estimates({"a": [103.0, 101.0], "b": [100.0, 99.0], "c": [101.0]})
    ranking = rank(tied, secondary={"a": 0.9, "b": 0.5, "c": math.nan})
    assert ranking.tie_set == ("b", "a", "c")
    assert rank(tied, secondary={"a": 0.9, "b": 0.5}, prefer="c").tie_set == ("c", "b", "a")


def test_equal_configs_are_ordered_by_key() -> None:
    same = {k: estimate_config([100.0, 100.0]) for k in ("z", "m", "b")}
    assert rank(same).tie_set == ("b", "m", "z")


def test_minimize_leads_with_the_lowest_value() -> None:
    values = {"fast": [0.50, 0.51, 0.49], "slow": [0.90, 0.92, 0.91]}
    ranking = rank(estimates(values), "minimize")
    assert ranking.best == "fast" and ranking.separated


def test_overlap_rule_follows_the_intervals() -> None:
    ests = estimates({"a": [110.0, 112.0], "b": [100.0, 101.0]})
    overlapping = ests["b"].interval.high >= ests["a"].interval.low
    assert ("b" in rank(ests, rule="overlap").tie_set) == overlapping


def test_truly_equal_configs_stay_tied_at_the_stated_error_rate() -> None:
    # five configs with the same true value, three repeats each: how often is one of them declared worse?
    rng = np.random.default_rng(21)
    excluded, reps = 0, 500
    for _ in range(reps):
        ests = {f"c{i}": estimate_config(list(100 * (1 + 0.07 * rng.standard_normal(3)))) for i in range(5)}
        excluded += len(rank(ests).tie_set) < 5
    assert excluded / reps <= 0.07  # Holm keeps the family-wise error near 5%


def test_an_unknown_noise_level_is_a_tie_not_an_error() -> None:
    unknown_run = Interval(80.0, -math.inf, math.inf, 0.95, 1, "too-few-requests")
    ests = {"a": estimate_config([100.0, 101.0]), "b": estimate_config([80.0], [unknown_run])}
    ranking = rank(ests)
    assert ranking.leader == "a" and set(ranking.tie_set) == {"a", "b"}
    assert math.isinf(relative_change([100.0, 101.0], [80.0], within_b=[unknown_run]).high)
