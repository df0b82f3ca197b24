"""The tests behind experiment decisions, from maintained libraries.

* Sample ratio mismatch: Pearson's chi-square of users per variant against the declared
  percentages (``scipy.stats.chisquare``); p < 0.001 halts the analysis.
* Planning: users per variant for the MDE (relative to the baseline), alpha and power
  (``statsmodels`` ``NormalIndPower``; Cohen's h for rates, mean/sd for amounts).
* The primary metric: spotify-confidence's group-sequential z-test (alpha spent over the
  daily looks up to the planned sample size), so looking every day keeps the false-positive
  rate at alpha; its intervals are the sequentially adjusted ones.
* Variance reduction: CUPED with the user's pre-experiment value of the metric.
* Rate guardrails: a one-sided two-proportion z-test (``statsmodels``).
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

logger = logging.getLogger(__name__)

SRM_ALPHA = 0.001
#: Columns of the per-look sufficient statistics a sequential test takes.
SUFFICIENT = ["look", "variant", "sum", "sum_sq", "count"]


def srm_p_value(users: dict[str, int], percents: dict[str, float]) -> float:
    """p-value of the users per variant under the declared split (1.0 without users)."""
    observed = np.array([users.get(name, 0) for name in percents], dtype=float)
    if observed.sum() == 0:
        return 1.0
    expected = np.array(list(percents.values()), dtype=float)
    expected = expected / expected.sum() * observed.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def planned_users_per_variant(metric: str, baseline: float, mde: float, alpha: float,
                              power: float, baseline_sd: float | None = None) -> int:
    """Users per variant to detect a relative change ``mde`` of ``baseline`` (two-sided)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    if metric == "conversion" or (metric == "ctr" and baseline_sd is None):
        effect = abs(proportion_effectsize(min(baseline * (1 + mde), 0.999999), baseline))
    else:
        if baseline_sd is None:
            raise ValueError(f"{metric}: planning needs the per-user standard deviation")
        effect = mde * baseline / baseline_sd
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0,
                                     alternative="two-sided")
    return int(math.ceil(n))


def cuped(values: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """``values`` minus theta x (covariate - its mean), theta = cov / var (pooled over the
    variants, as randomization makes the covariate independent of the variant)."""
    variance = float(np.var(covariate))
    if variance == 0:
        return values
    theta = float(np.cov(values, covariate, bias=True)[0, 1]) / variance
    return values - theta * (covariate - covariate.mean())


def sequential_test(looks: pd.DataFrame, control: str, treatment: str, final_total: int,
                    alpha: float) -> pd.DataFrame:
    """Relative lift of ``treatment`` over ``control`` at each look, with the
    group-sequential interval and verdict.

    Parameters
    ----------
    looks : DataFrame
        :data:`SUFFICIENT` columns, cumulative per look (1, 2, ...) and variant.
    final_total : int
        Planned users of both variants together at the last look (the alpha spending's
        information scale).

    Returns
    -------
    DataFrame
        One row per look: ``lift``, ``ci_lower``, ``ci_upper`` (relative) and
        ``significant`` (the interval excludes 0).
    """
    import spotify_confidence as confidence

    frame = looks[looks["variant"].isin([control, treatment])].copy()
    frame["final"] = max(int(final_total), int(frame.groupby("look")["count"].sum().max()))
    frame = frame.sort_values(["look", "variant"]).reset_index(drop=True)
    with warnings.catch_warnings():  # the library's pandas deprecations, not ours
        warnings.simplefilter("ignore")
        test = confidence.ZTest(frame, numerator_column="sum",
                                numerator_sum_squares_column="sum_sq",
                                denominator_column="count", categorical_group_columns="variant",
                                ordinal_group_column="look", interval_size=1 - alpha)
        out = test.difference(level_1=control, level_2=treatment, absolute=False,
                              groupby="look", final_expected_sample_size_column="final")
    out = out.drop(columns=["ci_lower", "ci_upper"]).rename(columns={
        "difference": "lift", "adjusted ci_lower": "ci_lower",
                              "adjusted ci_upper": "ci_upper"})
    out["significant"] = (out["ci_lower"] > 0) | (out["ci_upper"] < 0)
    return out[["look", "lift", "ci_lower", "ci_upper", "significant"]].astype(
        {"look": int, "lift": float, "ci_lower": float, "ci_upper": float})


def rate_increase_p_value(control_hits: int, control_n: int, treatment_hits: int,
                          treatment_n: int) -> float:
    """One-sided p-value that the treatment's rate is above the control's."""
    from statsmodels.stats.proportion import proportions_ztest

    if min(control_n, treatment_n) == 0 or control_hits + treatment_hits == 0:
        return 1.0
    if control_hits + treatment_hits == control_n + treatment_n:
        return 1.0
    _, p = proportions_ztest([treatment_hits, control_hits], [treatment_n, control_n],
                             alternative="larger")
    return float(p)
