"""Fast replications without HTTP: the same user model over lists fetched once from the
service, many experiments analysed with the library's statistics and decision rules.

A simulated person is a draw (with replacement) from the world's users: they share that
user's true preferences and list, and react independently. Each day every person has one
session (up to ``lists_per_session`` lists, leaving early after lists without a click).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from recsys.events.synthetic import purchase_probability
from recsys.experiments.analysis import Analysis, final_total, user_values
from recsys.experiments.decisions import decide
from recsys.experiments.model import Experiment, ExperimentSpec, Variant
from recsys.experiments.statistics import sequential_test, srm_p_value
from simulation.users import Behaviour


@dataclass(frozen=True)
class Arm:
    """True preference and price of each position of each world user's list in one arm."""

    preference: np.ndarray  # (world users, k)
    price: np.ndarray


def days_of(arm: Arm, persons: np.ndarray, days: int, rng: np.random.Generator,
            behaviour: Behaviour) -> list[np.ndarray]:
    """Cumulative (impressions, clicks, purchases, revenue, entered) per person after each
    day, as a (5, persons) array per day. People enter on a uniformly drawn day (the first
    day they visit) and then have a session every day."""
    pref = arm.preference[persons].astype(np.float32)
    price = arm.price[persons].astype(np.float32)
    click_p = (behaviour.examination(pref.shape[1]) * behaviour.click_scale * pref).astype(
        np.float32)
    buy_p = purchase_probability(pref)
    entry = rng.integers(0, days, len(persons))
    totals = np.zeros((5, len(persons)))
    out = []
    for day in range(days):
        entered = entry <= day
        totals[4] = entered
        active = entered.copy()
        for _ in range(behaviour.lists_per_session):
            clicked = rng.random(pref.shape, dtype=np.float32) < click_p
            bought = clicked & (rng.random(pref.shape, dtype=np.float32) < buy_p)
            n_clicks = clicked.sum(axis=1)
            totals[0] += active
            totals[1] += active * n_clicks
            totals[2] += active * bought.sum(axis=1)
            totals[3] += active * (bought * price).sum(axis=1)
            active &= ~((n_clicks == 0) & (rng.random(len(persons)) < behaviour.leave_after_poor))
        out.append(totals.copy())
    return out


def per_user(totals: np.ndarray, metric: str) -> np.ndarray:
    """Per-user values of ``metric`` of the people who have entered."""
    impressions, clicks, purchases, revenue, _ = totals[:, totals[4] > 0]
    return user_values(metric, impressions, clicks, purchases, revenue)


def looks_frame(days: list[tuple[np.ndarray, np.ndarray]], metric: str,
                names: tuple[str, str]) -> pd.DataFrame:
    """Sufficient statistics per look and arm (``days``: per look, each arm's totals)."""
    rows = []
    for look, pair in enumerate(days, start=1):
        for name, totals in zip(names, pair, strict=True):
            v = per_user(totals, metric)
            rows.append({"look": look, "variant": name, "sum": v.sum(),
                         "sum_sq": (v ** 2).sum(), "count": len(v)})
    return pd.DataFrame(rows)


def experiment_of(name: str, treatment: Variant, planned: int, metric: str = "ctr",
                  percent: float = 50.0) -> Experiment:
    spec = ExperimentSpec(experiment_id=name, primary_metric=metric, variants=[
        Variant(name="control", percent=100 - percent), treatment.model_copy(
            update={"percent": percent})], min_users_per_variant=planned)
    return Experiment(**spec.model_dump(), planned_users_per_variant=planned)


def replicate(experiment: Experiment, control: Arm, treatment: Arm, days: int,
              rng: np.random.Generator, behaviour: Behaviour,
              keep_treatment: float = 1.0) -> tuple[Analysis, float]:
    """One replication of ``experiment`` at its planned size: each person joins an arm by
    the declared split (``keep_treatment`` < 1 loses some treatment users, as a broken
    assignment or log would); returns the analysis and the last look's fixed-horizon
    p-value (for the A/A p-value distribution)."""
    planned = experiment.planned_users_per_variant or experiment.min_users_per_variant
    share = experiment.variants[1].percent / 100
    total = int(round(planned / max(share, 1 - share) * 1.0))
    in_treatment = rng.random(total) < share
    if keep_treatment < 1:
        in_treatment = in_treatment[~in_treatment | (rng.random(total) < keep_treatment)]
    n_t = int(in_treatment.sum())
    n_c = len(in_treatment) - n_t
    world = len(control.preference)
    a = days_of(control, rng.integers(0, world, n_c), days, rng, behaviour)
    b = days_of(treatment, rng.integers(0, world, n_t), days, rng, behaviour)
    names = (experiment.variants[0].name, experiment.variants[1].name)
    metric = experiment.primary_metric
    looks = looks_frame(list(zip(a, b, strict=True)), metric, names)
    lift = sequential_test(looks, names[0], names[1], final_total(experiment), experiment.alpha)
    last = looks[looks["look"] == looks["look"].max()]
    users = dict(zip(last["variant"], last["count"].astype(int), strict=True))
    daily = last.rename(columns={"count": "users"})[["look", "variant", "users"]]
    srm = srm_p_value(users, {v.name: v.percent for v in experiment.variants})
    p_value = float(stats.ttest_ind(per_user(a[-1], metric), per_user(b[-1], metric),
                                    equal_var=False).pvalue)
    return Analysis(experiment.experiment_id, daily, lift, srm), p_value


def decision_of(experiment: Experiment, analysis: Analysis) -> dict[str, str]:
    decision = decide(experiment, analysis)
    return {"action": decision.action, "reason": decision.reason}
