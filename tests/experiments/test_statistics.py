"""The statistics behind decisions, on data whose right answer is known."""

import numpy as np
import pandas as pd

from recsys.experiments.analysis import sufficient
from recsys.experiments.statistics import (
    cuped,
    planned_users_per_variant,
    sequential_test,
    srm_p_value,
)


def test_srm_flags_a_skewed_split_and_not_a_fair_one() -> None:
    assert srm_p_value({"a": 5000, "b": 5060}, {"a": 50, "b": 50}) > 0.1
    assert srm_p_value({"a": 5000, "b": 5400}, {"a": 50, "b": 50}) < 0.001
    assert srm_p_value({"a": 9000, "b": 1000}, {"a": 90, "b": 10}) > 0.1


def test_planned_sample_size_matches_the_textbook_figure() -> None:
    # 10 % baseline, +5 % relative, alpha 0.05 two-sided, power 0.8: about 57,800 per arm.
    n = planned_users_per_variant("conversion", 0.10, 0.05, 0.05, 0.8)
    assert 57_000 < n < 58_500
    smaller_effect = planned_users_per_variant("conversion", 0.10, 0.025, 0.05, 0.8)
    assert smaller_effect > 3.5 * n


def test_cuped_keeps_the_mean_and_cuts_the_variance() -> None:
    rng = np.random.default_rng(0)
    before = rng.poisson(3, 20_000).astype(float)
    after = before + rng.normal(0, 1, 20_000)
    adjusted = cuped(after, before)
    assert abs(adjusted.mean() - after.mean()) < 1e-9
    assert adjusted.var() < 0.4 * after.var()


def _looks(rng: np.random.Generator, rate_b: float, days: int = 5, per_day: int = 4000):
    users = {"a": np.empty(0), "b": np.empty(0)}
    frames = []
    for look in range(1, days + 1):
        for arm, rate in (("a", 0.1), ("b", rate_b)):
            users[arm] = np.r_[users[arm], rng.binomial(1, rate, per_day)]
        variants = np.repeat(["a", "b"], [len(users["a"]), len(users["b"])])
        frames.append(sufficient(look, variants, np.r_[users["a"], users["b"]]))
    return pd.concat(frames, ignore_index=True)


def test_sequential_test_finds_a_real_lift_and_its_interval_covers_it() -> None:
    out = sequential_test(_looks(np.random.default_rng(1), 0.13), "a", "b", 40_000, 0.05)
    assert out["look"].tolist() == [1, 2, 3, 4, 5]
    last = out.iloc[-1]
    assert last["significant"] and last["ci_lower"] < 0.3 < last["ci_upper"]
    # the early looks are held to a stricter bound: the interval is wider than at the end
    widths = (out["ci_upper"] - out["ci_lower"]).tolist()
    assert widths[0] > widths[-1]


def test_sequential_test_rarely_fires_without_a_difference() -> None:
    rng = np.random.default_rng(2)
    fired = sum(sequential_test(_looks(rng, 0.10), "a", "b", 40_000, 0.05)["significant"].any()
                for _ in range(40))
    assert fired <= 6  # alpha 0.05 over every look together: about 2 of 40 expected
